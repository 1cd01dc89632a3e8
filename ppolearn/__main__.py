"""`python -m ppolearn` is the `ppolearn` command."""

from ppolearn.cli import entry

entry()
