"""``python -m shardfit`` runs the command line."""

import sys

from shardfit.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
