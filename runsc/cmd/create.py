"""`runsc create [--bundle B] [--pid-file F] [--console-socket S] ID`.

Creates a container: returns once the sandbox process exists, has created
the container's init (not yet running), the prestart and createRuntime hooks
have run, and the pid file names the sandbox process. That process is a
child of the caller's (once this runsc exits, the caller or its subreaper
adopts it) and exits with the container's exit status.
"""

from __future__ import annotations

import argparse

from runsc.cmd.util import flag
from runsc.config import Config
from runsc.container.container import Container, CreateArgs


def add_create_flags(p: argparse.ArgumentParser) -> None:
    """Adds the flags create and run share."""
    flag(p, "bundle", "b", default=".", help="path to the bundle directory")
    flag(p, "pid-file", default="", help="file to write the sandbox's pid to")
    flag(
        p,
        "console-socket",
        default="",
        help="Unix socket to send the terminal's master to",
    )
    flag(p, "no-pivot", action="store_true", help="accepted for runc compatibility")
    flag(
        p, "no-new-keyring", action="store_true", help="accepted for runc compatibility"
    )
    flag(p, "preserve-fds", type=int, default=0, help="not supported")
    p.add_argument("container_id", metavar="ID")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `create` verb."""
    p = sub.add_parser("create", help="create a container")
    add_create_flags(p)
    p.set_defaults(func=main)


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `create`."""
    if args.preserve_fds:
        raise ValueError("--preserve-fds is not supported")
    Container.create(
        config,
        CreateArgs(
            container_id=args.container_id,
            bundle=args.bundle,
            pid_file=args.pid_file,
            console_socket=args.console_socket,
        ),
    )
    return 0
