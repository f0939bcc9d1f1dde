"""The sandbox's filesystems: which types exist and what is mounted where
(gVisor's runsc/boot/vfs.go).

The root is the container's files served by the gofer, under an overlay
whose upper layer is in memory unless --overlay2=none (rootfs.py); without
a gofer (tests of the sentry alone) it is the host's root served read-only
by hostfs. On top of it the spec's mounts and the default ones (mounts.py):

- /dev: a tmpfs with the memory devices and /dev/tty, /dev/fd and the
  stdio links, /dev/ptmx; /dev/pts (devpts) and /dev/shm (a tmpfs of its
  own);
- /tmp: a tmpfs;
- /proc: procfs; /sys: sysfs, read-only as container runtimes mount it
  (an empty read-only tmpfs for a type the sentry lacks, so that nothing
  shows through).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pkg.abi.linux import mount as MS
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.devices import memdev
from pkg.sentry.fsimpl.devpts.devpts import DevptsType
from pkg.sentry.fsimpl.hostfs.hostfs import HostfsType
from pkg.sentry.fsimpl.mqueue.mqueue import MqueueType
from pkg.sentry.fsimpl.proc.proc import ProcType
from pkg.sentry.fsimpl.sys.sys import SysType
from pkg.sentry.fsimpl.tmpfs.tmpfs import TmpfsType
from pkg.sentry.kernel.credentials import root_credentials
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.filesystem import (
    GetFilesystemOptions,
    RegisterFilesystemTypeOptions,
)
from pkg.sentry.vfs.options import GetDentryOptions, MkdirOptions, MknodOptions
from pkg.sentry.vfs.resolving_path import PathOperation
from runsc.boot import mounts, rootfs

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
        "mqueue",
        MqueueType(kernel),
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


def mount_root(
    kernel: Kernel,
    gofer_conns: Sequence[socket.socket] = (),
    overlay: bool = True,
    host_root: str = "/",
    spec_mounts: Sequence[dict[str, Any]] = (),
    overlay_submounts: bool = False,
) -> MountNamespace:
    """Builds the sandbox's mount namespace: the container's root, the
    spec's mounts and the sandbox's default ones (mounts.py).

    Args:
        kernel: the kernel.
        gofer_conns: the sentry's ends of the gofer connections, the root's
            first, then one per gofer mount of spec_mounts in order: the
            root is the gofer's files, under an overlay in memory unless
            overlay is False (runsc/boot/rootfs.py). Without any, the root is
            host_root, read-only, through hostfs, which opens host paths by
            name: for tests that run the sentry without a gofer.
        overlay: put the overlay on the gofer root.
        host_root: hostfs's root.
        spec_mounts: the spec's mounts.
        overlay_submounts: put an overlay on writable gofer mounts too.

    Raises:
        MountError: a mount of the spec cannot be applied.
    """
    vfs = kernel.vfs
    creds = root_credentials()
    if gofer_conns:
        ns = rootfs.new_root_namespace(vfs, gofer_conns[0], overlay)
    else:
        ns = vfs.new_mount_namespace(
            creds,
            "hostfs",
            GetFilesystemOptions(
                source=host_root, flags=MS.MS_RDONLY, internal=host_root
            ),
        )
    mounter = mounts.SpecMounter(vfs, ns, lambda dev: _populate_dev(vfs, creds, dev))
    mounter.apply(
        mounts.compile_mounts(spec_mounts, mounter.is_dir),
        gofer_conns[1:],
        overlay_submounts,
    )
    if not gofer_conns:
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
