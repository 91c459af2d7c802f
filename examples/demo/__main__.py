"""``python examples/demo``: run the demo, as ``scripts/demo`` and ``otel-impact demo`` do."""

import sys
from pathlib import Path

if not __package__:  # run as a directory: make ``demo`` importable from examples/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo.cli import main

raise SystemExit(main())
