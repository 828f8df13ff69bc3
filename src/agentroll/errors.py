"""One error tree, rooted at AgentrollError.

Each class also subclasses the builtin a caller would naturally catch, so
`except TimeoutError` still works on a ToolTimeout. Errors are typed at the
boundary they cross; inside an episode they become recorded stop reasons.
"""

from __future__ import annotations


class AgentrollError(Exception):
    """Root of every error agentroll raises on purpose."""


class ConfigError(AgentrollError, ValueError):
    """A config, CLI argument or registry name is wrong; the message names what is available."""


class UnknownNameError(ConfigError, KeyError):
    """A registry lookup (renderer, tokenizer, parser format, engine) found no exact match."""

    def __init__(self, kind: str, name: str, available: list[str] | tuple[str, ...]):
        self.kind, self.name, self.available = kind, name, sorted(available)
        super().__init__(f"unknown {kind} {name!r}; available: {', '.join(self.available)}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class RenderError(AgentrollError, ValueError):
    """A conversation could not be rendered to tokens (bad messages, template failure)."""


class TemplateNotPrefixStable(RenderError):
    """The template re-renders history differently, so appending a bridge would drift."""


class TokenizerError(AgentrollError, RuntimeError):
    """A tokenizer could not be built or loaded from its package."""


class EngineError(AgentrollError, RuntimeError):
    """An inference engine failed to produce a completion."""


class EngineUnavailable(EngineError, ConnectionError):
    """The engine could not be reached (connection refused, unhealthy, shut down)."""


class EngineTimeout(EngineError, TimeoutError):
    """A generation request exceeded its deadline."""


class EngineRejected(EngineError, ValueError):
    """The engine refused the request itself as invalid (an HTTP 400/422, a vLLM validation error): the
    request is at fault, not the engine, so sending it again or elsewhere would not help."""


class ContextOverflow(EngineError, ValueError):
    """prompt + max_tokens exceeds the engine's context window; the request is never sent."""


class EpisodePreempted(AgentrollError, RuntimeError):
    """A weight update aborted the episode's generation and its policy is to play the episode again from the
    start on the new weights (EpisodeConfig.on_weight_update_abort="restart_episode"); the runner does."""


class ToolError(AgentrollError, RuntimeError):
    """A tool failed (raised, crashed, returned garbage)."""


class ToolTimeout(ToolError, TimeoutError):
    """A tool call exceeded its timeout and was cancelled."""


class ToolValidationError(ToolError, ValueError):
    """Tool arguments or output did not match the tool's JSON Schema."""


class ToolUnavailable(ToolError, ConnectionError):
    """What runs a tool is missing or unreachable (a dead MCP server, no sandbox); the call fails closed."""


class ExecutorError(AgentrollError, RuntimeError):
    """Where episodes run failed as a whole (every Ray worker gone, no cluster); the run stops, its disk stays."""


class RatioBreach(AgentrollError, ArithmeticError):
    """A trainer's own logprobs disagree with the rollout's on the tokens it trains (an importance ratio off 1)."""


class RewardError(AgentrollError, ValueError):
    """A trainer needs an episode's reward and it could not be computed (metadata reward_error says why)."""
