"""Confinement of the sandbox process: namespaces, an empty root, and the
capabilities it keeps.

The sandbox process runs the sentry, which executes untrusted code's system
calls; if the sentry were subverted, this is what still holds. runsc starts
it as init of a new PID namespace; the boot process, still single-threaded,
then calls in order:

1. `enter_namespaces`: new mount, IPC and UTS namespaces, and a new network
   namespace unless the host's is asked for (or the one the spec names).
2. `pivot_to_new_root`: every mount becomes a slave of the host's so that
   nothing propagates back; a fresh tmpfs becomes the root by pivot_root; the
   old root is detached; the new root is remounted read-only, nosuid, nodev,
   noexec. It holds the few host facts that the sentry and the platform read
   from /proc while they start up, copied to their usual paths (HOST_FACTS),
   and nothing else: the container's files come from the gofer, through
   descriptors. (Without a gofer, for tests of the sentry alone, the
   container's root is bound read-only at ROOTFS_DIR, without its
   submounts, for the sentry's hostfs.) Nothing else of the host can be
   named. TODO(#7): `podman top` lists the processes it finds in /proc of
   this root (the sandbox process's mount namespace), so it lists none here,
   as with gVisor; runc's shows the container's. Showing them would take the
   sentry's /proc served to the host (FUSE).
3. `drop_capabilities`: every capability goes from every set, including the
   bounding set, except CAP_SYS_PTRACE, which the ptrace platform's tracer
   threads need; no_new_privs is set, which seccomp needs. Capabilities
   belong to threads, so this runs before the sentry starts any thread:
   every thread inherits the reduced sets.
4. (the sentry is built: MemoryFile, platform and its stub process, kernel)
5. (runsc/boot/filter installs the seccomp allowlist on every thread)
"""

from __future__ import annotations

import logging
import os

from pkg.abi.linux import capability as C
from pkg.abi.linux import mount as M
from pkg.abi.linux import prctl as PR
from pkg.abi.linux import sched as SC
from runsc.boot import syscalls

log = logging.getLogger(__name__)

# Capabilities the sentry keeps: the ptrace platform's tracer threads attach
# to stub threads, which needs CAP_SYS_PTRACE once the others are gone.
SENTRY_CAPS = 1 << C.CAP_SYS_PTRACE

# Host files the sentry and the platform read while they start, copied into
# the empty root: the sentry's own auxv (CPU features for the application's
# auxv; it describes this very process, so the copy is exact) and the lowest
# address applications may map (the ptrace platform's address-space limit),
# and the CPU's description for the sandbox's /proc/cpuinfo.
HOST_FACTS = ("/proc/self/auxv", "/proc/sys/vm/mmap_min_addr", "/proc/cpuinfo")

# Where the container's root appears in the sandbox process's root.
ROOTFS_DIR = "/rootfs"

# Where the new root is built, inside the sandbox's own mount namespace:
# any directory will do, since the mount is private to the namespace.
_NEW_ROOT = "/tmp"


def enter_namespaces(network: str) -> None:
    """Moves the calling process into new namespaces.

    Args:
        network: "none" (a new, empty network namespace), "host" (stay in
            the host's), or the path of a network namespace to join.

    Preconditions: the process is single-threaded.
    """
    flags = SC.CLONE_NEWNS | SC.CLONE_NEWIPC | SC.CLONE_NEWUTS
    if network == "none":
        flags |= SC.CLONE_NEWNET
    elif network != "host":
        fd = os.open(network, os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.setns(fd, SC.CLONE_NEWNET)
        finally:
            os.close(fd)
    syscalls.unshare(flags)


def pivot_to_new_root(rootfs: str | None) -> None:
    """Makes a read-only tmpfs the process's root (step 2 above).

    Args:
        rootfs: the host path of the container's root, to bind at
            ROOTFS_DIR for hostfs; None when the gofer serves it.

    Preconditions: enter_namespaces has run.
    """
    facts = {}
    for path in HOST_FACTS:
        with open(path, "rb") as f:
            facts[path] = f.read()
    # The root is named through a descriptor: _NEW_ROOT might cover it.
    rootfs_fd = -1
    if rootfs is not None:
        rootfs_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        syscalls.mount(None, "/", None, M.MS_REC | M.MS_SLAVE)
        syscalls.mount(
            "runsc-root",
            _NEW_ROOT,
            "tmpfs",
            M.MS_NOSUID | M.MS_NODEV | M.MS_NOEXEC,
            "mode=0755,size=64k,nr_inodes=32",
        )
        os.chdir(_NEW_ROOT)
        for path, data in facts.items():
            rel = path.lstrip("/")
            os.makedirs(os.path.dirname(rel), mode=0o555, exist_ok=True)
            fd = os.open(
                rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444
            )
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        if rootfs_fd >= 0:
            os.mkdir(ROOTFS_DIR.lstrip("/"), 0o555)
            # Not MS_REC: submounts of the root (the host's /proc when the
            # root is the host's, for `runsc do`) stay out of the sandbox's
            # reach.
            syscalls.mount(
                f"/proc/self/fd/{rootfs_fd}", ROOTFS_DIR.lstrip("/"), None, M.MS_BIND
            )
            syscalls.mount(
                None,
                ROOTFS_DIR.lstrip("/"),
                None,
                M.MS_REMOUNT | M.MS_BIND | M.MS_RDONLY | M.MS_NOSUID | M.MS_NODEV,
            )
    finally:
        if rootfs_fd >= 0:
            os.close(rootfs_fd)

    # pivot_root(".", ".") stacks the old root on top of the new one at
    # "/"; detaching "/" then takes the old root away (pivot_root(2)).
    syscalls.pivot_root(".", ".")
    syscalls.umount2(".", M.MNT_DETACH)
    os.chdir("/")
    syscalls.mount(
        None,
        "/",
        None,
        M.MS_REMOUNT | M.MS_BIND | M.MS_RDONLY | M.MS_NOSUID | M.MS_NODEV | M.MS_NOEXEC,
    )
    log.debug("boot: pivoted into a new root holding %s", rootfs)


def drop_capabilities(keep: int = SENTRY_CAPS) -> None:
    """Drops every capability not in keep, from every set (step 4 above)."""
    for cap in range(C.CAP_LAST_CAP + 1):
        if not keep >> cap & 1:
            try:
                syscalls.prctl(PR.PR_CAPBSET_DROP, cap)
            except OSError as e:
                # A kernel older than the capability does not know it.
                if e.errno != 22:
                    raise
    syscalls.prctl(PR.PR_CAP_AMBIENT, 4)  # PR_CAP_AMBIENT_CLEAR_ALL
    syscalls.prctl(PR.PR_SET_NO_NEW_PRIVS, 1)
    syscalls.capset(keep, keep, 0)
    log.debug("boot: capabilities dropped; kept %#x", keep)
