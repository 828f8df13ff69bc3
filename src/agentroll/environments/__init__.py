"""Environments that ship with agentroll (agent/lifecycle.py's EnvironmentFactory), each named in a run config:

    environment: bfcl               # BFCL v4 single-turn, scored by BFCL's AST checker      (bfcl.py)
    environment: bfcl_multi_turn    # BFCL v4 multi-turn, BFCL's classes, executor and checker (bfcl.py)

`agentroll envs list` shows them with the rest. They sit above agent/ and below rollout/: they use the
lifecycle protocols and the tools, and nothing below them imports them.
"""
