"""Entry point: ``python -m benchmarks run [--quick|--full] [--only CASE] [--scratch DIR]``."""

import sys

from benchmarks.runner import main

if __name__ == "__main__":
    sys.exit(main())
