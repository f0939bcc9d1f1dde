"""`runsc run [--detach] [--bundle B] [--pid-file F] [--console-socket S] ID`:
create, start, and unless detached wait for the container, then delete it.

Attached, the sandbox dies with this runsc, signals this runsc receives are
forwarded to the container's init (through the sandbox), and runsc exits
with the container's exit status (a death by signal as 128 + its number).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal

from runsc.boot.signals import FORWARDED_SIGNALS
from runsc.cmd.create import add_create_flags
from runsc.cmd.util import flag
from runsc.config import Config
from runsc.container import console
from runsc.container.container import Container, CreateArgs
from runsc.sandbox.launch import wait_status_to_exit_code


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `run` verb."""
    p = sub.add_parser("run", help="create and start a container")
    flag(p, "detach", "d", action="store_true", help="do not wait for it")
    flag(p, "keep", action="store_true", help="do not delete it after it exits")
    add_create_flags(p)
    p.set_defaults(func=main)


def run_attached(c: Container, keep: bool = False) -> int:
    """Starts a container created attached, forwards signals to it, waits
    for it and deletes it; returns its exit code."""
    assert c.proc is not None
    pid = c.proc.pid

    def forward(signo: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signo)

    for signo in FORWARDED_SIGNALS:
        signal.signal(signo, forward)
    try:
        c.start()
        status = c.wait()
    finally:
        if not keep:
            c.delete(force=True)
    return wait_status_to_exit_code(status)


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `run`."""
    if args.preserve_fds:
        raise ValueError("--preserve-fds is not supported")
    if args.detach:
        return _run(config, args)
    # Attached with a terminal and no console socket, the sandbox relays
    # runsc's own terminal, in raw mode meanwhile.
    with console.saved_attributes(0):
        return _run(config, args)


def _run(config: Config, args: argparse.Namespace) -> int:
    c = Container.create(
        config,
        CreateArgs(
            container_id=args.container_id,
            bundle=args.bundle,
            pid_file=args.pid_file,
            console_socket=args.console_socket,
            attached=not args.detach,
        ),
    )
    if args.detach:
        try:
            c.start()
        except BaseException:
            c.delete(force=True)
            raise
        return 0
    return run_attached(c, keep=args.keep)
