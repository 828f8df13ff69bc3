import sys

from agentroll.cli.main import main

sys.exit(main())
