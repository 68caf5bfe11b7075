"""The `reportqa` command line (placeholder until the CLI issue lands)."""

import sys


def main() -> None:
    print("reportqa: not implemented yet", file=sys.stderr)
    sys.exit(2)
