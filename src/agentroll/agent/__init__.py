"""The episode loop (L3): one readable loop, budgets, tasks, rewards.

traj = await run_episode(task, engine=engine, renderer=renderer, toolset=toolset, config=EpisodeConfig())
"""

from agentroll.agent.environment import Environment, ToolEnvironment
from agentroll.agent.episode import run_episode
from agentroll.agent.limits import Stop
from agentroll.agent.rewards import get_reward, group_stats, score
from agentroll.agent.task import EpisodeConfig, Task

__all__ = [
    "Environment",
    "EpisodeConfig",
    "Stop",
    "Task",
    "ToolEnvironment",
    "get_reward",
    "group_stats",
    "run_episode",
    "score",
]
