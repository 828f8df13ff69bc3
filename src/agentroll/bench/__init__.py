"""Benchmarks behind `agentroll bench`: P1 loop efficiency, P2 orchestration ceiling, P3 cost growth,
P4 bridge vs re-render, and pool routing. Each measures its ratio side by side in one run."""
