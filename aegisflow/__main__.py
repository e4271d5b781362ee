import sys

from aegisflow.cli import main

sys.exit(main())
