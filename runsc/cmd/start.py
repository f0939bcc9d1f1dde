"""`runsc start ID`: runs a created container's init."""

from __future__ import annotations

import argparse

from runsc.config import Config
from runsc.container.container import Container


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `start` verb."""
    p = sub.add_parser("start", help="start a created container")
    p.add_argument("container_id", metavar="ID")
    p.set_defaults(func=main)


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `start`."""
    Container.load(config, args.container_id).start()
    return 0
