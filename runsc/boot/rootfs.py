"""The container's root filesystem and bind mounts: the gofer's files,
the root under an overlay whose upper layer is a tmpfs in the MemoryFile
(DESIGN.md section 6).

With --overlay2=none the gofer mount itself is the root, and writes reach
the host (the gofer then serves it read-write). Otherwise (root:memory, the
default, or all:memory) the gofer serves the root read-only and every
change lives in memory for the life of the sandbox. Bind mounts of the spec
are further gofer mounts, each on its own connection, read-only where the
spec says so, and under an overlay of their own with all:memory.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from pkg.abi.linux import errno
from pkg.abi.linux import mount as MS
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.gofer.client import Client
from pkg.sentry.fsimpl.gofer.gofer import GoferMountOptions, GoferType
from pkg.sentry.fsimpl.overlay.overlay import OverlayOptions, OverlayType
from pkg.sentry.fsimpl.tmpfs.tmpfs import TmpfsOptions
from pkg.sentry.kernel.credentials import root_credentials
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.filesystem import GetFilesystemOptions
from pkg.sentry.vfs.mount import Mount, MountNamespace
from pkg.sentry.vfs.options import GetDentryOptions, MkdirOptions, MknodOptions
from pkg.sentry.vfs.resolving_path import PathOperation
from runsc import config

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.pgalloc.memory_file import MemoryFile
    from pkg.sentry.vfs.dentry import Dentry
    from pkg.sentry.vfs.filesystem import Filesystem
    from pkg.sentry.vfs.vfs import VirtualFilesystem

log = logging.getLogger(__name__)


def parse_overlay2(overlay2: str) -> tuple[bool, bool]:
    """Parses --overlay2 as runsc.config.parse_overlay2 does, warning about
    media that are not implemented.

    Raises:
        ValueError: an unknown value.
    """
    scopes = config.parse_overlay2(overlay2)
    if scopes[0] and not overlay2.endswith(":memory"):
        # TODO(#5): a file-backed upper layer (self, dir=); memory for now.
        log.warning("boot: --overlay2=%s: the upper layer is in memory", overlay2)
    return scopes


def overlay_root(overlay2: str) -> bool:
    """Reports whether --overlay2 puts an overlay on the root.

    Raises:
        ValueError: an unknown value.
    """
    return parse_overlay2(overlay2)[0]


def register_filesystems(vfs: VirtualFilesystem, mf: MemoryFile) -> None:
    """Registers the gofer and overlay filesystem types (sentry-only: the
    application cannot mount them); mf holds the gofer files' page
    caches."""
    vfs.register_filesystem_type("gofer", GoferType(mf))
    vfs.register_filesystem_type("overlay", OverlayType())


def _filesystem(
    vfs: VirtualFilesystem, conn: socket.socket, overlay: bool, source: str
) -> tuple[Filesystem, Dentry]:
    """Makes the filesystem of one gofer connection, under an overlay if
    asked."""
    creds = root_credentials()
    gofer_opts = GetFilesystemOptions(
        source=source, internal=GoferMountOptions(Client(conn))
    )
    if not overlay:
        return vfs.new_filesystem(creds, "gofer", gofer_opts)
    lower_fs, lower_root = vfs.new_filesystem(creds, "gofer", gofer_opts)
    upper_fs, upper_root = vfs.new_filesystem(
        creds,
        "tmpfs",
        GetFilesystemOptions(source="tmpfs", internal=TmpfsOptions(root_mode=0o755)),
    )
    lower = vfs.new_disconnected_mount(lower_fs, lower_root)
    upper = vfs.new_disconnected_mount(upper_fs, upper_root)
    return vfs.new_filesystem(
        creds,
        "overlay",
        GetFilesystemOptions(
            source=source,
            internal=OverlayOptions(
                VirtualDentry(upper, upper_root), VirtualDentry(lower, lower_root)
            ),
        ),
    )


def new_root_namespace(
    vfs: VirtualFilesystem, conn: socket.socket, overlay: bool
) -> MountNamespace:
    """Builds the mount namespace whose root is the gofer connection's
    mount, under an overlay if asked.

    Args:
        vfs: the sandbox's VFS, with tmpfs, gofer and overlay registered.
        conn: the sentry's end of the root's gofer connection; the
            filesystem takes it over.
        overlay: put a memory-backed overlay on top.
    """
    fs, root = _filesystem(vfs, conn, overlay, "none")
    ns = MountNamespace(Mount(vfs, fs, root, 0, "none"))
    if overlay:
        log.info("boot: root is the gofer's under an overlay in memory")
    else:
        log.info("boot: root is the gofer's, writable (--overlay2=none)")
    return ns


def mount_submounts(
    vfs: VirtualFilesystem,
    ns: MountNamespace,
    mounts: list[dict[str, Any]],
    conns: list[socket.socket],
    overlay: bool,
) -> None:
    """Mounts the spec's gofer mounts (pkg.gofer.spec.gofer_mounts, in
    order), each on its connection.

    Missing mount points are made (a directory, or an empty file for a file
    bind mount), inside the sandbox: destinations are resolved in its
    namespace, symlinks included.

    Raises:
        SyscallError: a mount point cannot be made or used.
    """
    for m, conn in zip(mounts, conns, strict=True):
        read_only = "ro" in (m.get("options") or [])
        mount_gofer(vfs, ns, m, conn, overlay, MS.MS_RDONLY if read_only else 0)


def mount_gofer(
    vfs: VirtualFilesystem,
    ns: MountNamespace,
    m: dict[str, Any],
    conn: socket.socket,
    overlay: bool,
    flags: int = 0,
) -> None:
    """Mounts one gofer mount of the spec on its connection, with the
    per-mount MS_* flags given (MS_RDONLY for a read-only one, which never
    gets an overlay).

    Raises:
        SyscallError: the mount point cannot be made or used.
    """
    creds = root_credentials()
    root = VirtualDentry(ns.root, ns.root.root)
    read_only = bool(flags & MS.MS_RDONLY)
    fs, fs_root = _filesystem(vfs, conn, overlay and not read_only, m.get("source", ""))
    dest = os.fsencode(m["destination"])
    make_mount_point(vfs, creds, root, dest, fs_root.is_dir())
    vd = vfs.get_dentry_at(
        None,
        creds,
        PathOperation(root=root, start=root, path=dest, follow=True),
        GetDentryOptions(),
    )
    mnt = Mount(vfs, fs, fs_root, flags, m.get("source", ""))
    vfs.connect_mount(mnt, vd)
    log.info(
        "boot: %s mounted from the gofer%s",
        m["destination"],
        " (ro)" if read_only else "",
    )


def make_mount_point(
    vfs: VirtualFilesystem,
    creds: Credentials,
    root: VirtualDentry,
    path: bytes,
    is_dir: bool,
) -> None:
    """Makes path (and its missing parents) unless it exists: a directory,
    or an empty file if not is_dir."""
    comps = [c for c in path.split(b"/") if c]
    for i in range(len(comps)):
        sub = b"/" + b"/".join(comps[: i + 1])
        pop = PathOperation(root=root, start=root, path=sub, follow=True)
        try:
            vfs.get_dentry_at(None, creds, pop, GetDentryOptions())
            continue
        except SyscallError as e:
            if e.errno != errno.ENOENT:
                raise
        if i < len(comps) - 1 or is_dir:
            vfs.mkdir_at(None, creds, pop, MkdirOptions(0o755))
        else:
            vfs.mknod_at(None, creds, pop, MknodOptions(S.S_IFREG | 0o644))
