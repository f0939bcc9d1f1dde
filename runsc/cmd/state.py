"""`runsc state ID`: prints the container's OCI state as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from runsc.config import Config
from runsc.container.container import Container


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `state` verb."""
    p = sub.add_parser("state", help="print a container's state")
    p.add_argument("container_id", metavar="ID")
    p.set_defaults(func=main)


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `state`."""
    c = Container.load(config, args.container_id)
    with c.sd.lock(exclusive=False):
        c.reload()
        state = c.oci_state()
    json.dump(state, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
