"""The sandbox's filesystems: which types exist and what is mounted where
(gVisor's runsc/boot/vfs.go).

The root is the container's files served by the gofer, under an overlay
whose upper layer is in memory unless --overlay2=none (rootfs.py); without
a gofer (tests of the sentry alone) it is the host's root served read-only
by hostfs. On top of it:

- /dev: a tmpfs with the memory devices and /dev/tty, /dev/fd and the
  stdio links, /dev/ptmx, /dev/pts (devpts) and /dev/shm (a tmpfs of its
  own);
- /tmp: a tmpfs;
- /proc: procfs;
- /sys: sysfs, read-only as container runtimes mount it.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING

from pkg.abi.linux import mount as MS
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.devices import memdev
from pkg.sentry.fsimpl.devpts.devpts import DevptsType
from pkg.sentry.fsimpl.hostfs.hostfs import HostfsType
from pkg.sentry.fsimpl.proc.proc import ProcType
from pkg.sentry.fsimpl.sys.sys import SysType
from pkg.sentry.fsimpl.tmpfs.tmpfs import TmpfsOptions, TmpfsType
from pkg.sentry.kernel.credentials import root_credentials
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.filesystem import (
    GetFilesystemOptions,
    RegisterFilesystemTypeOptions,
)
from pkg.sentry.vfs.options import GetDentryOptions, MkdirOptions, MknodOptions
from pkg.sentry.vfs.resolving_path import PathOperation
from runsc.boot import rootfs

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.kernel import Kernel
    from pkg.sentry.vfs.mount import MountNamespace
    from pkg.sentry.vfs.vfs import VirtualFilesystem

log = logging.getLogger(__name__)

# Symbolic links in /dev, as udev and systemd make them.
_DEV_LINKS = (
    (b"fd", b"/proc/self/fd"),
    (b"stdin", b"/proc/self/fd/0"),
    (b"stdout", b"/proc/self/fd/1"),
    (b"stderr", b"/proc/self/fd/2"),
    (b"ptmx", b"pts/ptmx"),
)


def register_filesystems(kernel: Kernel) -> None:
    """Registers every filesystem type and device of the sandbox."""
    vfs = kernel.vfs
    vfs.register_filesystem_type(
        "tmpfs",
        TmpfsType(kernel.mf),
        RegisterFilesystemTypeOptions(allow_user_mount=True, allow_user_list=True),
    )
    vfs.register_filesystem_type("hostfs", HostfsType(kernel.mf))
    vfs.register_filesystem_type(
        "proc",
        ProcType(kernel),
        RegisterFilesystemTypeOptions(allow_user_mount=True, allow_user_list=True),
    )
    vfs.register_filesystem_type(
        "devpts",
        DevptsType(kernel),
        RegisterFilesystemTypeOptions(allow_user_mount=True, allow_user_list=True),
    )
    vfs.register_filesystem_type(
        "sysfs",
        SysType(kernel),
        RegisterFilesystemTypeOptions(allow_user_mount=True, allow_user_list=True),
    )
    rootfs.register_filesystems(vfs, kernel.mf)
    memdev.register(vfs)


def _here(vd: VirtualDentry, path: bytes) -> PathOperation:
    return PathOperation(root=vd, start=vd, path=path, follow=False)


def _mount_tmpfs(
    vfs: VirtualFilesystem,
    creds: Credentials,
    root: VirtualDentry,
    path: bytes,
    mode: int,
    flags: int = 0,
    data: str = "",
) -> VirtualDentry:
    opts = GetFilesystemOptions(
        source="tmpfs", flags=flags, data=data, internal=TmpfsOptions(root_mode=mode)
    )
    mnt = vfs.mount_at(None, creds, _here(root, path), "tmpfs", opts)
    return VirtualDentry(mnt, mnt.root)


def _populate_dev(
    vfs: VirtualFilesystem, creds: Credentials, dev: VirtualDentry
) -> None:
    for name, major, minor, _device in memdev.DEVICES:
        mode = S.S_IFCHR | 0o666
        vfs.mknod_at(
            None, creds, _here(dev, name.encode()), MknodOptions(mode, major, minor)
        )
    for name, target in _DEV_LINKS:
        vfs.symlink_at(None, creds, _here(dev, name), target)
    vfs.mkdir_at(None, creds, _here(dev, b"pts"), MkdirOptions(0o755))
    vfs.mkdir_at(None, creds, _here(dev, b"shm"), MkdirOptions(0o1777))


def _exists(
    vfs: VirtualFilesystem, creds: Credentials, root: VirtualDentry, path: bytes
) -> bool:
    try:
        vd = vfs.get_dentry_at(None, creds, _here(root, path), GetDentryOptions())
    except SyscallError:
        return False
    return vd.dentry.is_dir()


def mount_root(
    kernel: Kernel,
    gofer_conn: socket.socket | None = None,
    overlay: bool = True,
    host_root: str = "/",
) -> MountNamespace:
    """Builds the sandbox's mount namespace: the container's root and the
    sentry's own mounts on it.

    Args:
        kernel: the kernel.
        gofer_conn: the sentry's end of the root's gofer connection: the
            root is the gofer's files, under an overlay in memory unless
            overlay is False (runsc/boot/rootfs.py). Without one the root is
            host_root, read-only, through hostfs, which opens host paths by
            name: for tests that run the sentry without a gofer.
        overlay: put the overlay on the gofer root.
        host_root: hostfs's root.
    """
    vfs = kernel.vfs
    creds = root_credentials()
    if gofer_conn is not None:
        ns = rootfs.new_root_namespace(vfs, gofer_conn, overlay)
    else:
        ns = vfs.new_mount_namespace(
            creds,
            "hostfs",
            GetFilesystemOptions(
                source=host_root, flags=MS.MS_RDONLY, internal=host_root
            ),
        )
    root = VirtualDentry(ns.root, ns.root.root)
    if _exists(vfs, creds, root, b"dev"):
        dev = _mount_tmpfs(vfs, creds, root, b"dev", 0o755, MS.MS_NOSUID, "size=64k")
        _populate_dev(vfs, creds, dev)
        _mount_tmpfs(vfs, creds, dev, b"shm", 0o1777, MS.MS_NOSUID | MS.MS_NODEV)
        vfs.mount_at(
            None,
            creds,
            _here(dev, b"pts"),
            "devpts",
            GetFilesystemOptions(
                source="devpts",
                flags=MS.MS_NOSUID | MS.MS_NOEXEC,
                data="newinstance,ptmxmode=0666,mode=0620,gid=5",
            ),
        )
    if _exists(vfs, creds, root, b"tmp"):
        _mount_tmpfs(vfs, creds, root, b"tmp", 0o1777, MS.MS_NOSUID | MS.MS_NODEV)
    if _exists(vfs, creds, root, b"proc"):
        vfs.mount_at(
            None,
            creds,
            _here(root, b"proc"),
            "proc",
            GetFilesystemOptions(
                source="proc", flags=MS.MS_NOSUID | MS.MS_NODEV | MS.MS_NOEXEC
            ),
        )
    if _exists(vfs, creds, root, b"sys"):
        vfs.mount_at(
            None,
            creds,
            _here(root, b"sys"),
            "sysfs",
            GetFilesystemOptions(
                source="sysfs",
                flags=MS.MS_RDONLY | MS.MS_NOSUID | MS.MS_NODEV | MS.MS_NOEXEC,
            ),
        )
    if gofer_conn is None:
        log.info("boot: root is the host's %s, read-only (hostfs)", host_root)
    return ns


def working_directory(kernel: Kernel, ns: MountNamespace, cwd: str) -> VirtualDentry:
    """Returns the sandbox directory for the process's working directory,
    or the root if it does not exist in the sandbox."""
    root = VirtualDentry(ns.root, ns.root.root)
    pop = PathOperation(root=root, start=root, path=os.fsencode(cwd), follow=True)
    try:
        return kernel.vfs.get_dentry_at(
            None, root_credentials(), pop, GetDentryOptions(check_search_dir=True)
        )
    except SyscallError as e:
        log.warning(
            "boot: working directory %s unusable in the sandbox (%s); using /", cwd, e
        )
        return root
