"""Starting a gofer process: what `runsc do` (and the OCI verbs) call to
serve a container's files.

The caller gets the gofer's process and the sentry's ends of the
connections, root first, then one per extra mount in the order given; it
hands those to the sandbox and closes its own copies once the sandbox has
them. The gofer exits when every connection has closed.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass

from pkg.gofer.spec import gofer_mounts
from runsc.config import Config

_PR_SET_PDEATHSIG = 1
# Looked up once, so that the child between fork and exec only calls it.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


@dataclass(frozen=True, slots=True)
class GoferMount:
    """GoferMount is a host directory (or file) served on its own
    connection."""

    source: str
    read_only: bool = False


def runsc_command() -> list[str]:
    """Returns the command that runs this runsc's entry point directly."""
    here = os.path.dirname(os.path.abspath(__file__))
    return [sys.executable, "-s", os.path.join(os.path.dirname(here), "main.py")]


def runsc_env() -> dict[str, str]:
    """Returns the environment of a runsc child: what Python needs to find
    runsc's modules, nothing of the caller's."""
    paths = [p for p in sys.path if p and os.path.isabs(p)]
    return {"PYTHONPATH": os.pathsep.join(paths), "PATH": os.defpath}


def _die_with_parent() -> None:
    # Between fork and exec (preexec_fn): the gofer must not outlive runsc.
    # It only makes one system call through a function found before fork.
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def start(
    config: Config,
    rootfs: str,
    read_only: bool = False,
    mounts: tuple[GoferMount, ...] = (),
    attached: bool = True,
    extra_args: tuple[str, ...] = (),
) -> tuple[subprocess.Popen, list[socket.socket]]:
    """Starts `runsc gofer` serving rootfs (and mounts).

    Args:
        config: the global flags, passed on to the gofer.
        rootfs: the container's root filesystem; the gofer chroots there.
        read_only: serve the root read-only.
        mounts: further host paths, each on its own connection.
        attached: kill the gofer when the calling thread's process dies.
        extra_args: more `runsc gofer` flags (--host-fifo=open...).

    Returns:
        The gofer process and the sentry's end of each connection.
    """
    pairs = [
        socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for _ in range(1 + len(mounts))
    ]
    theirs = [b.fileno() for _, b in pairs]
    argv = [
        *runsc_command(),
        *config.to_flags(),
        "gofer",
        f"--rootfs={rootfs}",
        f"--io-fd={theirs[0]}",
    ]
    if read_only:
        argv.append("--ro")
    for m, fd in zip(mounts, theirs[1:], strict=True):
        argv.append(f"--mount={fd}:{m.source}" + (":ro" if m.read_only else ""))
    argv.extend(extra_args)
    try:
        proc = subprocess.Popen(
            argv,
            pass_fds=theirs,
            env=runsc_env(),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if attached else None,  # noqa: PLW1509
        )
    except BaseException:
        for a, b in pairs:
            a.close()
            b.close()
        raise
    for _, b in pairs:
        b.close()
    return proc, [a for a, _ in pairs]


def start_for_spec(
    config: Config,
    spec: dict,
    bundle: str,
    attached: bool = True,
    extra_args: tuple[str, ...] = (),
) -> tuple[subprocess.Popen, list[socket.socket]]:
    """Starts `runsc gofer` for an OCI container: its root (root.path,
    relative to bundle) and every gofer mount of the spec
    (pkg.gofer.spec.gofer_mounts, in that order).

    Returns:
        The gofer process and the sentry's end of each connection: the
        root's first, then one per gofer mount, in spec order. What an
        overlay covers (--overlay2) is served read-only.
    """
    n = 1 + len(gofer_mounts(spec))
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(n)]
    theirs = [b.fileno() for _, b in pairs]
    spec_fd = os.memfd_create("runsc-gofer-spec", os.MFD_CLOEXEC)
    try:
        os.write(spec_fd, json.dumps(spec).encode())
        os.lseek(spec_fd, 0, os.SEEK_SET)
        argv = [
            *runsc_command(),
            *config.to_flags(),
            "gofer",
            f"--spec-fd={spec_fd}",
            f"--bundle={bundle}",
            f"--io-fds={','.join(map(str, theirs))}",
            *extra_args,
        ]
        proc = subprocess.Popen(
            argv,
            pass_fds=[*theirs, spec_fd],
            env=runsc_env(),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if attached else None,  # noqa: PLW1509
        )
    except BaseException:
        for a, b in pairs:
            a.close()
            b.close()
        raise
    finally:
        os.close(spec_fd)
    for _, b in pairs:
        b.close()
    return proc, [a for a, _ in pairs]
