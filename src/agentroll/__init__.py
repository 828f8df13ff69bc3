"""agentroll: token-exact multi-turn tool-calling rollouts for RL training."""

__version__ = "0.1.0"
