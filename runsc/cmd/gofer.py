"""`runsc gofer`: serve a container's files to the sentry.

One gofer runs per container. It opens the container's root filesystem and
every gofer-backed mount, then confines itself (new network, IPC and UTS
namespaces, chroot into the root filesystem, file capabilities only, a
seccomp allowlist) and serves one protocol connection per mount on the
descriptors it was given (see pkg/gofer/proto/gofer.proto). It exits when
every connection has closed.

Two ways to say what to serve:

    runsc gofer --rootfs=DIR [--ro] --io-fd=N [--mount=FD:SRC[:ro]]...

    runsc gofer --spec-fd=N [--bundle=DIR] --io-fds=A,B,...

With --spec-fd the gofer reads the OCI spec (JSON) from descriptor N: the
root filesystem is root.path (relative to --bundle, default the working
directory), read-only when root.readonly says so, and the first io fd serves
it; each further io fd serves the next mount of gofer_mounts(spec) in order,
read-only when its options hold "ro".

Whatever the flags say, a mount that the global --overlay2 puts under an
overlay (the root for root:*, every mount for all:*) is served read-only:
the sandbox's writes go to the overlay's upper layer, never to the host.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import socket

from pkg.gofer import confine, server
from pkg.gofer.spec import gofer_mounts
from runsc.config import Config, parse_overlay2

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `gofer` verb."""
    p = sub.add_parser("gofer", help="serve a container's files (internal)")
    p.add_argument("--rootfs", default="", help="the container's root filesystem")
    p.add_argument("--ro", action="store_true", help="serve the root read-only")
    p.add_argument("--io-fd", type=int, default=-1, help="connection for the root")
    p.add_argument(
        "--mount",
        action="append",
        default=[],
        metavar="FD:SRC[:ro]",
        help="serve host path SRC on connection FD (repeatable)",
    )
    p.add_argument(
        "--spec-fd", type=int, default=-1, help="OCI spec to read mounts from"
    )
    p.add_argument("--bundle", default="", help="bundle directory (with --spec-fd)")
    p.add_argument(
        "--io-fds", default="", help="connections, root first (with --spec-fd)"
    )
    p.add_argument(
        "--host-fifo",
        default="none",
        choices=("none", "open"),
        help="whether host FIFOs may be opened",
    )
    p.add_argument(
        "--host-devices",
        default="none",
        choices=("none", "open"),
        help="whether host device nodes may be opened and created",
    )
    p.add_argument(
        "--TESTONLY-unconfined",
        dest="unconfined",
        action="store_true",
        help="skip chroot, capabilities and seccomp (tests without privilege)",
    )
    p.set_defaults(func=main)


class _Served:
    """_Served is one mount to serve: its root descriptor and connection."""

    def __init__(self, root_fd: int, io_fd: int, read_only: bool) -> None:
        self.root_fd = root_fd
        self.io_fd = io_fd
        self.read_only = read_only


def _open_root(path: str) -> int:
    # Host paths from our own command line or the spec are trusted: they may
    # go through symlinks. Nothing below them ever will.
    return os.open(path, os.O_PATH | os.O_CLOEXEC)


def _plan(args: argparse.Namespace, overlay2: str) -> tuple[str, list[_Served]]:
    """Opens every mount root; returns the chroot directory and the plan.

    Mounts an overlay will cover (--overlay2) are served read-only whatever
    else says, so that nothing written in the sandbox can reach the host.
    """
    overlay_root, overlay_all = parse_overlay2(overlay2)
    if args.spec_fd >= 0:
        with os.fdopen(args.spec_fd, "rb") as f:
            spec = json.loads(f.read())
        bundle = args.bundle or os.getcwd()
        root = spec.get("root") or {}
        rootfs = os.path.join(bundle, root.get("path", "rootfs"))
        io_fds = [int(x) for x in args.io_fds.split(",") if x]
        mounts = gofer_mounts(spec)
        if len(io_fds) != 1 + len(mounts):
            raise ValueError(
                f"gofer: {len(io_fds)} io fds for {1 + len(mounts)} gofer mounts"
            )
        ro = bool(root.get("readonly")) or overlay_root
        plan = [_Served(_open_root(rootfs), io_fds[0], ro)]
        for m, fd in zip(mounts, io_fds[1:], strict=True):
            src = os.path.join(bundle, m["source"])
            ro = "ro" in (m.get("options") or []) or overlay_all
            plan.append(_Served(_open_root(src), fd, ro))
        return rootfs, plan

    if not args.rootfs or args.io_fd < 0:
        raise ValueError("gofer: --rootfs and --io-fd (or --spec-fd) are required")
    plan = [_Served(_open_root(args.rootfs), args.io_fd, args.ro or overlay_root)]
    for m in args.mount:
        parts = m.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "ro"):
            raise ValueError(f"gofer: bad --mount {m!r}")
        ro = len(parts) == 3 or overlay_all
        plan.append(_Served(_open_root(parts[1]), int(parts[0]), ro))
    return args.rootfs, plan


def _raise_fd_limit() -> None:
    # Every node the sentry holds is a descriptor here.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `gofer`."""
    try:
        chroot_dir, plan = _plan(args, config.overlay2)
    except (OSError, ValueError) as e:
        log.error("gofer: %s", e)
        return 1
    _raise_fd_limit()
    confine.set_name(b"runsc-gofer")

    host_fifo = args.host_fifo == "open"
    host_devices = args.host_devices == "open"
    proc_fd = server.open_proc_fd()
    connections = []
    for s in plan:
        sock = socket.socket(fileno=s.io_fd)
        if sock.family != socket.AF_UNIX:
            log.error("gofer: io fd %d is not a Unix socket", s.io_fd)
            return 1
        policy = server.Policy(
            read_only=s.read_only, host_fifo=host_fifo, host_devices=host_devices
        )
        connections.append(server.Connection(sock, s.root_fd, policy, proc_fd))

    if args.unconfined:
        log.warning("gofer: running unconfined (--TESTONLY-unconfined)")
    else:
        try:
            confine.confine(chroot_dir, host_devices)
        except OSError as e:
            log.error("gofer: cannot confine: %s", e)
            return 1
    log.info("gofer: serving %d mount(s)", len(connections))
    server.serve_connections(connections)
    log.info("gofer: all connections closed")
    return 0
