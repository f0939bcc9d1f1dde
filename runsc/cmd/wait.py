"""`runsc wait [--pid PID] ID`: waits for the container (or one of its
processes) to exit and prints `{"id": ID, "exitStatus": N}`."""

from __future__ import annotations

import argparse
import json

from runsc.cmd.util import flag
from runsc.config import Config
from runsc.container.container import Container
from runsc.sandbox.launch import wait_status_to_exit_code


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `wait` verb."""
    p = sub.add_parser("wait", help="wait for a container to exit")
    flag(p, "pid", type=int, default=0, help="a process started by exec")
    p.add_argument("container_id", metavar="ID")
    p.set_defaults(func=main)


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `wait`."""
    c = Container.load(config, args.container_id)
    status = c.wait_pid(args.pid) if args.pid else c.wait()
    code = wait_status_to_exit_code(status)
    print(json.dumps({"id": c.id, "exitStatus": code}))
    return 0
