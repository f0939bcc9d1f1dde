"""`runsc boot`: the sandbox process (internal; `create` starts it). See
runsc/boot/boot.py."""

from __future__ import annotations

import argparse

from runsc.config import Config


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the internal `boot` verb."""
    p = sub.add_parser("boot", help=argparse.SUPPRESS)
    p.add_argument("--bundle", default="")
    p.add_argument("--spec-fd", type=int, required=True)
    p.add_argument("--exec-fd", type=int, required=True)
    p.add_argument("--control-fd", type=int, required=True)
    p.add_argument("--exit-fd", type=int, required=True)
    p.add_argument("--stdio-fds", default="0,1,2")
    p.add_argument("--console", action="store_true")
    p.add_argument("container_id", metavar="ID")
    p.set_defaults(func=main, no_stderr_log=True)


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `boot`; never returns."""
    # The sentry's modules are imported here, not by the other verbs, which
    # have no use for them.
    from runsc.boot import boot  # noqa: PLC0415

    code = boot.boot(
        config,
        boot.BootArgs(
            container_id=args.container_id,
            bundle=args.bundle,
            spec_fd=args.spec_fd,
            exec_fd=args.exec_fd,
            control_fd=args.control_fd,
            exit_fd=args.exit_fd,
            stdio_fds=[int(fd) for fd in args.stdio_fds.split(",")],
            console=args.console,
            network=config.network,
        ),
    )
    boot.exit_now(code)
    return code
