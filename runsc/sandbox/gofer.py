"""Starting a container's gofer process (`runsc gofer`), which serves the
container's files to the sandbox: sandbox.spawn starts one per container.

The caller gets the gofer's process and the sentry's ends of the
connections, root first, then one per extra mount in the order given; it
hands those to the sandbox and closes its own copies once the sandbox has
them. The gofer exits when every connection has closed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from dataclasses import dataclass

from pkg.abi.linux import prctl as PR
from pkg.gofer.spec import gofer_mounts
from runsc.boot import syscalls
from runsc.config import Config
from runsc.sandbox.launch import runsc_command, runsc_env


@dataclass(frozen=True, slots=True)
class GoferMount:
    """GoferMount is a host directory (or file) served on its own
    connection."""

    source: str
    read_only: bool = False


def _die_with_parent() -> None:
    # Between fork and exec (preexec_fn): an attached gofer must not outlive
    # runsc.
    syscalls.prctl(PR.PR_SET_PDEATHSIG, signal.SIGKILL)


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
            # Never the caller's stdout, nor its stderr once detached: a
            # container client that reads create's output until its end (the
            # containerd shim with a terminal) would wait for the gofer.
            # The gofer logs to --log and --debug-log.
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=None if attached else subprocess.DEVNULL,
            start_new_session=True,
            # runsc is single-threaded, so preexec_fn is safe here.
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
            # Never the caller's stdout, nor its stderr once detached: a
            # container client that reads create's output until its end (the
            # containerd shim with a terminal) would wait for the gofer.
            # The gofer logs to --log and --debug-log.
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=None if attached else subprocess.DEVNULL,
            start_new_session=True,
            # runsc is single-threaded, so preexec_fn is safe here.
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
