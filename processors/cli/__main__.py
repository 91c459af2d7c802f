import sys

from otel_impact.processors.cli import main

sys.exit(main())
