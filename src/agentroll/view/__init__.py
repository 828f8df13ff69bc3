"""`agentroll view RUN_DIR`: a self-contained HTML report of a run directory (no network at view time)."""
