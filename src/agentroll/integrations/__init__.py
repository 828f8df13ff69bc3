"""Trainer adapters (design.md L5): a trainer drives agentroll through these; nothing below imports them."""
