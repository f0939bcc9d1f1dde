"""`runsc events [--stats] [--interval 5s] ID`: prints resource usage as
runc's JSON events, once (--stats) or every interval until the container
stops."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

from runsc.cmd.util import flag
from runsc.config import Config
from runsc.container.container import Container
from runsc.container.state import STOPPED


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `events` verb."""
    p = sub.add_parser("events", help="print a container's resource usage")
    flag(p, "stats", action="store_true", help="print one event and exit")
    flag(p, "interval", default="5s", help="time between events (Go duration)")
    p.add_argument("container_id", metavar="ID")
    p.set_defaults(func=main)


def parse_duration(value: str) -> float:
    """Parses a Go duration such as 5s, 250ms or 1m30s into seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|ns|m|s)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"invalid duration {value!r}")
    return sum(float(n) * units[u] for n, u in parts)


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `events`."""
    interval = parse_duration(args.interval)
    c = Container.load(config, args.container_id)
    while True:
        if c.status() == STOPPED:
            return 0
        stats = c.stats()
        event = {
            "type": "stats",
            "id": c.id,
            "data": {
                "memory": {"usage": {"usage": stats.memory_usage_bytes}},
                "pids": {"current": stats.pids},
            },
        }
        json.dump(event, sys.stdout)
        sys.stdout.write("\n")
        sys.stdout.flush()
        if args.stats:
            return 0
        time.sleep(interval)
