"""`python -m control_api api ...`: the same commands as `voiceflow api`, without the other components."""

from __future__ import annotations

import argparse
import sys

from control_api.cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m control_api")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
