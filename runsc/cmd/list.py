"""`runsc list [--format table|json] [--quiet]`: lists the containers in
the state root."""

from __future__ import annotations

import argparse
import json
import sys

from runsc.cmd.util import flag
from runsc.config import Config
from runsc.container.container import Container
from runsc.container.state import ContainerError, list_ids


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `list` verb."""
    p = sub.add_parser("list", help="list containers")
    flag(p, "format", "f", default="table", choices=("table", "json"))
    flag(p, "quiet", "q", action="store_true", help="print ids only")
    p.set_defaults(func=main)


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `list`."""
    states = []
    for cid in list_ids(config.root):
        try:
            c = Container.load(config, cid)
        except ContainerError:
            continue
        states.append(c.oci_state())
    if args.quiet:
        for s in states:
            print(s["id"])
    elif args.format == "json":
        json.dump(states, sys.stdout)
        sys.stdout.write("\n")
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [
            (s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"])
            for s in states
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print(
                "   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
            )
    return 0
