"""Exit 0 when every `name==version` given is installed at exactly that version (the install scripts run pip
only when this fails). Usage: python scripts/pins_met.py fastapi==0.136.3 uvicorn==0.54.0 ..."""

import sys
from importlib.metadata import PackageNotFoundError, version


def met(pin: str) -> bool:
    name, _, want = pin.partition("==")
    try:
        return version(name) == want
    except PackageNotFoundError:
        return False


sys.exit(0 if all(met(p) for p in sys.argv[1:]) else 1)
