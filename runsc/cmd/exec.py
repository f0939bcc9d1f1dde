"""`runsc exec [flags] ID [COMMAND [ARG...]]`: runs a further process in a
running container.

The process is --process (an OCI process object in a JSON file), or the
container's own process with COMMAND as its args and the flags applied
(--cwd, --env, --user, --additional-gids, --cap, --no-new-privs, --tty).

Without --detach, runsc waits and exits with the process's status (a death
by signal as 128 + its number), forwarding signals it receives. With
--detach, runsc leaves behind a small proxy process, a child of the caller,
that waits for the process and exits with its status; --pid-file names the
proxy. Signals sent to the proxy go to the process.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import os
import signal

from pkg.abi.linux import capability as C
from runsc.boot.signals import FORWARDED_SIGNALS
from runsc.cmd.util import flag
from runsc.config import Config
from runsc.container import console
from runsc.container.container import Container
from runsc.container.state import write_atomic
from runsc.sandbox.launch import wait_status_to_exit_code

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `exec` verb."""
    p = sub.add_parser("exec", help="run a process in a running container")
    flag(p, "process", "p", default="", help="JSON file with an OCI process")
    flag(p, "detach", "d", action="store_true", help="do not wait for it")
    flag(p, "pid-file", default="", help="file to write the waiting pid to")
    flag(p, "console-socket", default="", help="socket to send the terminal to")
    flag(p, "tty", "t", action="store_true", help="give it a terminal")
    flag(p, "cwd", default="", help="working directory")
    flag(p, "env", "e", action="append", default=[], help="KEY=VALUE to add")
    flag(p, "user", "u", default="", help="UID[:GID]")
    flag(p, "additional-gids", "g", action="append", default=[], type=int)
    flag(p, "cap", "c", action="append", default=[], help="capability to add")
    flag(p, "no-new-privs", action="store_true")
    flag(p, "preserve-fds", type=int, default=0, help="not supported")
    flag(p, "process-label", default="", help="ignored")
    flag(p, "apparmor", default="", help="ignored")
    p.add_argument("container_id", metavar="ID")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(func=main)


def build_process(c: Container, args: argparse.Namespace) -> dict:
    """Returns the process object to run."""
    if args.process:
        with open(args.process, "rb") as f:
            process = json.loads(f.read())
        if not isinstance(process, dict):
            raise ValueError(f"{args.process}: not a JSON object")
        return process
    command = args.command
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise ValueError("exec: no command given")
    process = copy.deepcopy(c.spec().get("process", {}))
    process["args"] = command
    process["terminal"] = bool(args.tty)
    if args.cwd:
        process["cwd"] = args.cwd
    if args.env:
        process["env"] = list(process.get("env", [])) + args.env
    user = process.setdefault("user", {})
    if args.user:
        uid, _, gid = args.user.partition(":")
        user["uid"] = int(uid)
        user["gid"] = int(gid) if gid else 0
    if args.additional_gids:
        user["additionalGids"] = args.additional_gids
    if args.cap:
        caps = process.setdefault("capabilities", {})
        for cap in args.cap:
            name = (
                cap.upper() if cap.upper().startswith("CAP_") else f"CAP_{cap.upper()}"
            )
            if name not in C.BY_NAME:
                raise ValueError(f"unknown capability {name}")
            for kind in ("bounding", "effective", "permitted", "ambient"):
                caps.setdefault(kind, [])
                if name not in caps[kind]:
                    caps[kind].append(name)
    if args.no_new_privs:
        process["noNewPrivileges"] = True
    return process


def _forward_to(c: Container, pid: int) -> None:
    def forward(signo: int, _frame: object) -> None:
        with contextlib.suppress(Exception):
            c.signal_pid(pid, signo)

    for signo in FORWARDED_SIGNALS:
        signal.signal(signo, forward)


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `exec`."""
    if args.preserve_fds:
        raise ValueError("--preserve-fds is not supported")
    c = Container.load(config, args.container_id)
    process = build_process(c, args)
    if not args.detach:
        # This runsc waits and exits with the process's status: it is the
        # host process that stands for it.
        with console.saved_attributes(0):
            pid = c.exec(process, args.console_socket)
            if args.pid_file:
                write_atomic(os.path.abspath(args.pid_file), str(os.getpid()).encode())
            _forward_to(c, pid)
            return wait_status_to_exit_code(c.wait_pid(pid))
    pid = c.exec(process, args.console_socket, attached=False)

    proxy = os.fork()
    if proxy == 0:
        # The proxy: waits for the process and exits with its status.
        code = 255
        try:
            os.setsid()
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.close(devnull)
            _forward_to(c, pid)
            code = wait_status_to_exit_code(c.wait_pid(pid))
        except BaseException:
            log.exception("exec: waiting for process %d", pid)
        finally:
            logging.shutdown()
            os._exit(code)
    if args.pid_file:
        write_atomic(os.path.abspath(args.pid_file), str(proxy).encode())
    return 0
