"""`python -m mcp_scheduler` runs the `mcp-scheduler` command."""

import sys

from .cli import main

sys.exit(main())
