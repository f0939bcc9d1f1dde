"""The amd64 system call table.

Each sys_<family> module lists its own entries in ENTRIES; this module puts
them together with the calls declared unsupported. Numbers absent from the
table return ENOSYS through the dispatcher, which counts and logs them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from pkg.abi.linux import errno
from pkg.abi.linux import sysno as N
from pkg.sentry.syscalls.syscall import Syscall, error

# Table size: one past the highest number Linux amd64 defines.
TABLE_SIZE = 512

# The sys_<family> modules that make up the table.
_FAMILY_NAMES = (
    "sys_aio",
    "sys_attr",
    "sys_chdir",
    "sys_epoll",
    "sys_eventfd",
    "sys_file",
    "sys_file_open",
    "sys_futex",
    "sys_getdents",
    "sys_identity",
    "sys_inotify",
    "sys_ioprio",
    "sys_kcmp",
    "sys_lock",
    "sys_membarrier",
    "sys_memfd",
    "sys_mempolicy",
    "sys_misc",
    "sys_msgqueue",
    "sys_mmap",
    "sys_mq",
    "sys_mount",
    "sys_namespace",
    "sys_path",
    "sys_pipe",
    "sys_poll",
    "sys_prctl",
    "sys_process_vm",
    "sys_ptrace",
    "sys_random",
    "sys_read_write",
    "sys_rlimit",
    "sys_sched",
    "sys_seccomp",
    "sys_sem",
    "sys_session",
    "sys_signal",
    "sys_shm",
    "sys_signalfd",
    "sys_socket",
    "sys_splice",
    "sys_stat",
    "sys_sync",
    "sys_thread",
    "sys_time",
    "sys_timer",
    "sys_timerfd",
    "sys_utsname",
    "sys_xattr",
)
FAMILIES: tuple[ModuleType, ...] = tuple(
    importlib.import_module(f"{__package__}.{name}") for name in _FAMILY_NAMES
)

# Calls that deliberately fail, with why.
UNSUPPORTED = [
    error(
        N.SYS_rseq,
        "rseq",
        errno.ENOSYS,
        "restartable sequences need CPU preemption detection, which the "
        "ptrace platform lacks; libc falls back",
    ),
]


def entries() -> list[Syscall]:
    """Returns every entry of the table."""
    out = []
    for family in FAMILIES:
        out += family.ENTRIES
    return out + UNSUPPORTED


def build_table() -> list[Syscall | None]:
    """Returns the table indexed by system call number."""
    table: list[Syscall | None] = [None] * TABLE_SIZE
    for entry in entries():
        assert table[entry.number] is None, entry.name
        assert N.NAMES[entry.number] == entry.name, entry.name
        table[entry.number] = entry
    return table
