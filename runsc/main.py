"""runsc: the command-line interface of the sandbox runtime."""

from __future__ import annotations

import argparse
import logging
import sys

from runsc import config as runsc_config
from runsc import log as runsc_log
from runsc.cmd import do, gofer

log = logging.getLogger("runsc")


def build_parser() -> argparse.ArgumentParser:
    """Returns the parser for the global flags and every verb."""
    p = argparse.ArgumentParser(
        prog="runsc",
        description="An application kernel for containers.",
        allow_abbrev=False,
    )
    runsc_config.add_global_flags(p)
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")
    do.add_parser(sub)
    gofer.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Parses argv and runs the verb; returns the exit status."""
    argv = runsc_config.normalize_argv(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help(sys.stderr)
        return 2
    config = runsc_config.config_from_args(args)
    runsc_log.setup(config, args.verb)
    try:
        return args.func(config, args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
