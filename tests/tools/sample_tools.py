"""Python functions loaded by import path from a toolset YAML in the config tests."""

from __future__ import annotations

from agentroll.tools import tool

_INVENTORY = {"apple": 3, "pear": 0}


def stock(item: str, warehouse: int = 1) -> dict[str, int]:
    """How many of an item are in stock.

    Args:
        item: The item's name.
        warehouse: Which warehouse to look in.
    """
    return {"count": _INVENTORY.get(item, 0), "warehouse": warehouse}


@tool(name="shout", timeout_s=2)
async def loud(text: str) -> str:
    """Upper-case a text."""
    return text.upper()
