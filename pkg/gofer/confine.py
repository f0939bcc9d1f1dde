"""Confinement of the gofer process: namespaces, chroot, capabilities and a
seccomp filter, applied in that order once everything the gofer needs from
the host is open.

After confine() the gofer can reach files only through the descriptors it
already holds, sees the container root as "/", keeps only the capabilities
that let it act on files for the sentry (CAP_CHOWN, CAP_DAC_OVERRIDE,
CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, and CAP_MKNOD when host devices
are allowed), and can make only the system calls in GOFER_SYSCALLS. Anything
else kills it.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os

from pkg.seccomp import seccomp as sc

log = logging.getLogger(__name__)

_libc = ctypes.CDLL(None, use_errno=True)

CAP_CHOWN = 0
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
CAP_FOWNER = 3
CAP_FSETID = 4
CAP_MKNOD = 27

# Capabilities the gofer keeps to act on files for the sentry.
GOFER_CAPS = (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID)

_CLONE_NEWUTS = 0x04000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWNET = 0x40000000
_CLONE_THREAD = 0x00010000

_PR_SET_DUMPABLE = 4
_PR_SET_NAME = 15
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# x86-64 numbers of the system calls the gofer makes once confined: its own
# file operations, the socket I/O of the protocol, and what CPython needs to
# run threads, allocate memory, log and exit.
GOFER_SYSCALLS = {
    "read": 0,
    "write": 1,
    "close": 3,
    "fstat": 5,
    "poll": 7,
    "lseek": 8,
    "mmap": 9,
    "mprotect": 10,
    "munmap": 11,
    "brk": 12,
    "rt_sigaction": 13,
    "rt_sigprocmask": 14,
    "rt_sigreturn": 15,
    "pread64": 17,
    "pwrite64": 18,
    "readv": 19,
    "writev": 20,
    "sched_yield": 24,
    "mremap": 25,
    "madvise": 28,
    "dup": 32,
    "getpid": 39,
    "sendto": 44,
    "recvfrom": 45,
    "sendmsg": 46,
    "recvmsg": 47,
    "shutdown": 48,
    "exit": 60,
    "fcntl": 72,
    "fsync": 74,
    "fdatasync": 75,
    "ftruncate": 77,
    "getdents64": 217,
    "fstatfs": 138,
    "gettid": 186,
    "fsetxattr": 190,
    "fgetxattr": 193,
    "flistxattr": 196,
    "fremovexattr": 199,
    "futex": 202,
    "sched_getaffinity": 204,
    "set_tid_address": 218,
    "restart_syscall": 219,
    "clock_gettime": 228,
    "clock_nanosleep": 230,
    "exit_group": 231,
    "openat": 257,
    "mkdirat": 258,
    "mknodat": 259,
    "fchownat": 260,
    "newfstatat": 262,
    "unlinkat": 263,
    "linkat": 265,
    "symlinkat": 266,
    "readlinkat": 267,
    "fchmodat": 268,
    "ppoll": 271,
    "set_robust_list": 273,
    "utimensat": 280,
    "dup3": 292,
    "renameat2": 316,
    "getrandom": 318,
    "statx": 332,
    "rseq": 334,
    "clone3": 435,
}

_SYS_CLONE = 56
_SYS_CLONE3 = 435


def gofer_filter_rules() -> list[sc.Rule]:
    """Returns the gofer's seccomp rules."""
    rules = [sc.Rule(nr) for name, nr in GOFER_SYSCALLS.items() if name != "clone3"]
    # Threads only: clone must carry CLONE_THREAD, and clone3 (whose flags
    # live in memory the filter cannot read) fails so that glibc falls back
    # to clone.
    rules.append(
        sc.Rule(_SYS_CLONE, conds=(sc.ArgCond(0, _CLONE_THREAD, _CLONE_THREAD),))
    )
    rules.append(sc.Rule(_SYS_CLONE3, sc.ret_errno(errno.ENOSYS)))
    return rules


def set_name(name: bytes) -> None:
    """Names the process (its comm, what ps and top show)."""
    _libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name[:15]), 0, 0, 0)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def unshare_namespaces() -> None:
    """Moves into new network, IPC and UTS namespaces: the gofer needs none
    of the host's. Failure (no privilege) is logged, not fatal."""
    if _libc.unshare(_CLONE_NEWNET | _CLONE_NEWIPC | _CLONE_NEWUTS) != 0:
        log.warning(
            "gofer: cannot unshare namespaces: %s", os.strerror(ctypes.get_errno())
        )


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def last_cap() -> int:
    """Returns the highest capability number the kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return 40


def drop_capabilities(keep: tuple[int, ...], cap_last: int) -> None:
    """Reduces the bounding, ambient, permitted, effective and inheritable
    sets to keep, for the calling thread (call it before starting threads).
    """
    for cap in range(cap_last + 1):
        if cap not in keep:
            _check(_libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0), "PR_CAPBSET_DROP")
    _check(
        _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0),
        "PR_CAP_AMBIENT",
    )
    bits = 0
    for cap in keep:
        bits |= 1 << cap
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)(
        _CapData(bits & 0xFFFFFFFF, bits & 0xFFFFFFFF, 0),
        _CapData(bits >> 32, bits >> 32, 0),
    )
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def confine(chroot_dir: str, host_devices: bool) -> None:
    """Confines the calling process for serving files.

    Call it from the main thread before any other thread exists, after every
    host file the gofer will need (mount roots, /proc/self/fd, log files) is
    open, and after importing everything: the filesystem is gone afterwards.

    Args:
        chroot_dir: the new root, usually the container's root filesystem.
        host_devices: keep CAP_MKNOD so that device nodes can be created.
    """
    cap_last = last_cap()
    unshare_namespaces()
    os.chroot(chroot_dir)
    os.chdir("/")
    os.umask(0)
    # Not dumpable: other processes of the same user cannot ptrace us.
    _check(_libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0), "PR_SET_DUMPABLE")
    keep = GOFER_CAPS + ((CAP_MKNOD,) if host_devices else ())
    drop_capabilities(keep, cap_last)
    sc.install(gofer_filter_rules(), sc.SECCOMP_RET_KILL_PROCESS)
    log.info("gofer: confined to %s", chroot_dir)
