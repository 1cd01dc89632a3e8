"""`python -m ppolearn` is the `ppolearn` command."""

import sys

from ppolearn.cli import main

sys.exit(main())
