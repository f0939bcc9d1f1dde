"""`runsc kill [--all] ID [SIGNAL]`: sends a signal (SIGTERM by default) to
the container's init, or with --all to every process in it.

Signals are given by number (9) or name (KILL, SIGKILL). In the created
state a signal that would end init ends the container. `--all` on a stopped
container succeeds, as runc's does.
"""

from __future__ import annotations

import argparse

from runsc.cmd.util import flag
from runsc.config import Config
from runsc.container.container import Container
from runsc.specutils import spec as specutils


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `kill` verb."""
    p = sub.add_parser("kill", help="send a signal to a container")
    flag(p, "all", "a", action="store_true", help="signal every process")
    flag(p, "pid", type=int, default=0, help="signal this process (sandbox pid)")
    p.add_argument("container_id", metavar="ID")
    p.add_argument("signal", nargs="?", default="SIGTERM")
    p.set_defaults(func=main)


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `kill`."""
    signo = specutils.parse_signal(args.signal)
    c = Container.load(config, args.container_id)
    if args.pid:
        c.signal_pid(args.pid, signo)
        return 0
    c.kill(signo, all_processes=args.all)
    return 0
