"""`runsc pause ID` and `runsc resume ID`: stop and restart every process
of a running container, as runc does with the cgroup freezer."""

from __future__ import annotations

import argparse

from runsc.config import Config
from runsc.container.container import Container


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `pause` and `resume` verbs."""
    p = sub.add_parser("pause", help="pause a container")
    p.add_argument("container_id", metavar="ID")
    p.set_defaults(func=pause)
    p = sub.add_parser("resume", help="resume a paused container")
    p.add_argument("container_id", metavar="ID")
    p.set_defaults(func=resume)


def pause(config: Config, args: argparse.Namespace) -> int:
    """Runs `pause`."""
    Container.load(config, args.container_id).pause()
    return 0


def resume(config: Config, args: argparse.Namespace) -> int:
    """Runs `resume`."""
    Container.load(config, args.container_id).resume()
    return 0
