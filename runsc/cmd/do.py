"""`runsc do CMD [ARGS...]`: run one command in a fresh sandbox.

The sandbox sees the host's file tree and this process's environment,
working directory and standard descriptors; the command's exit status
becomes runsc's, with death by a signal reported as 128 + the signal
number, as a shell reports it. A command that cannot be found exits 127.

When standard input, output and error are all terminals, the command gets
a terminal of its own in the sandbox (/dev/pts/0, relayed to runsc's, as
`run` of a spec with process.terminal); otherwise it gets runsc's
descriptors as they are.

`do` is `run` of a container whose spec it makes up: the host root (or the
directory given with --rootfs) as the container's root, the command as its
process with every capability, and a state directory under --root that it
removes afterwards.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
from typing import Any

from pkg.abi.linux import capability as C
from runsc.cmd.run import run_attached
from runsc.config import Config
from runsc.container import console
from runsc.container.container import Container, CreateArgs
from runsc.container.rootfs import ExecutableError, find_executable
from runsc.container.state import ContainerError
from runsc.specutils.spec import Spec

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `do` verb."""
    p = sub.add_parser("do", help="run a command in a new sandbox")
    p.add_argument("--cwd", default="", help="working directory (default: current)")
    p.add_argument("--hostname", default="localhost")
    p.add_argument(
        "--rootfs",
        default="",
        help="directory to use as the root instead of the host's / (served by "
        "the gofer, under the overlay as the host root is); the working "
        "directory then defaults to /",
    )
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(func=main)


def _resolve(command: str, env: dict[str, str]) -> str | None:
    if "/" in command:
        return command
    return shutil.which(command, path=env.get("PATH", os.defpath))


def _mounts(root: str) -> list[dict[str, Any]]:
    # As on the host, not the 64 MiB of a container's default /dev/shm; the
    # other mounts are the defaults (runsc/boot/mounts.py).
    out: list[dict[str, Any]] = [
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "nodev", "mode=1777"],
        }
    ]
    if root == "/":
        # The host's /tmp is not empty, so the default /tmp would leave it
        # showing; the sandbox's own keeps the host's temporary files out.
        # Another root keeps its /tmp if it has files there, as an image.
        out.append(
            {
                "destination": "/tmp",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "nodev", "mode=1777"],
            }
        )
    return out


def make_spec(argv: list[str], cwd: str, hostname: str, root: str = "/") -> Spec:
    """Returns the spec of a `do` container whose root is the host directory
    root."""
    caps = sorted(C.BY_NAME)
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": all(os.isatty(fd) for fd in (0, 1, 2)),
            "user": {"uid": 0, "gid": 0},
            "args": argv,
            "env": [f"{k}={v}" for k, v in os.environ.items()],
            "cwd": cwd,
            "capabilities": {
                kind: caps for kind in ("bounding", "effective", "permitted")
            },
        },
        # Writable: writes land in the overlay's memory (--overlay2), or on
        # the host with --overlay2=none.
        "root": {"path": root, "readonly": False},
        "hostname": hostname,
        "mounts": _mounts(root),
    }


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `do`."""
    argv = args.command
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        log.error("do: no command given")
        return 2
    if args.rootfs:
        root = os.path.abspath(args.rootfs)
        if not os.path.isdir(root):
            log.error("do: --rootfs %s: not a directory", args.rootfs)
            return 2
        cwd = args.cwd or "/"
        # The command is looked up inside the root, when the container is
        # created, as the container would look it up.
        env = [f"{k}={v}" for k, v in os.environ.items()]
        try:
            find_executable(root, argv[0], env, cwd)
        except ExecutableError as e:
            log.error("do: %s (in %s)", e, root)
            return 127
    else:
        root = "/"
        cwd = args.cwd or os.getcwd()
        executable = _resolve(argv[0], dict(os.environ))
        if executable is None or not os.path.exists(executable):
            log.error("do: %s: command not found", argv[0])
            return 127
    spec = make_spec(argv, cwd, args.hostname, root)
    with console.saved_attributes(0):
        return _run(config, spec)


def _run(config: Config, spec: Spec) -> int:
    try:
        c = Container.create(
            config,
            CreateArgs(
                container_id=f"runsc-do-{secrets.token_hex(6)}",
                bundle=os.getcwd(),
                attached=True,
                spec=spec,
            ),
        )
    except ContainerError as e:
        log.error("do: %s", e)
        return 128
    return run_attached(c)
