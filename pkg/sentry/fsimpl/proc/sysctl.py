"""/proc/sys: the sysctls programs read (kernel/sysctl.c and the tables of
each subsystem).

Values that describe the sentry (pid_max, nr_open, pipe-max-size) come
from the constants the sentry enforces. Settings the sentry has no use for
yet (overcommit_memory, somaxconn...) keep what root
writes so that it reads back, as a tunable does, without changing
behaviour: each such file is marked in _TUNABLES.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux.fs import PIPE_MAX_SIZE
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.kernfs.kernfs import DataInode, Inode, StaticDir
from pkg.sentry.fsimpl.proc.task_files import CAP_LAST_CAP
from pkg.sentry.kernel import version as V
from pkg.sentry.kernel.credentials import CAP_SYS_PTRACE, NGROUPS_MAX
from pkg.sentry.kernel.ipc.namespace import IPC_SYSCTLS, ipc_of
from pkg.sentry.kernel.limits import NR_OPEN
from pkg.sentry.kernel.task_set import PID_MAX
from pkg.sentry.kernel.uts_namespace import uts_of
from pkg.sentry.vfs.permissions import MAY_WRITE

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.kernel import Kernel
    from pkg.sentry.kernel.task import Task

# The most a sysctl write may hold (a page, as proc_sys_write).
_MAX_WRITE = 4096

# Tunables: (path, initial value). The sentry keeps what root writes; the
# behaviour they would tune is not modelled (TODO(#5) where it matters).
_TUNABLES = (
    ("fs/file-max", "9223372036854775807"),
    ("fs/inotify/max_queued_events", "16384"),
    ("fs/inotify/max_user_instances", "128"),
    ("fs/inotify/max_user_watches", "8192"),
    ("fs/protected_fifos", "1"),
    ("fs/protected_hardlinks", "1"),
    ("fs/protected_regular", "2"),
    ("fs/protected_symlinks", "1"),
    ("fs/suid_dumpable", "0"),
    ("kernel/core_uses_pid", "0"),
    ("kernel/dmesg_restrict", "1"),
    ("kernel/keys/maxkeys", "200"),
    ("kernel/kptr_restrict", "1"),
    ("kernel/perf_event_paranoid", "2"),
    ("kernel/panic", "0"),
    ("kernel/printk", "4\t4\t1\t7"),
    ("kernel/randomize_va_space", "2"),
    ("kernel/sched_child_runs_first", "0"),
    ("kernel/sem", "32000\t1024000000\t500\t32000"),
    ("kernel/shm_rmid_forced", "0"),
    ("kernel/threads-max", str(PID_MAX)),
    ("kernel/unprivileged_bpf_disabled", "2"),
    ("net/core/rmem_default", "212992"),
    ("net/core/rmem_max", "212992"),
    ("net/core/somaxconn", "4096"),
    ("net/core/wmem_default", "212992"),
    ("net/core/wmem_max", "212992"),
    ("net/ipv4/ip_forward", "0"),
    ("net/ipv4/ip_local_port_range", "32768\t60999"),
    ("net/ipv4/ping_group_range", "1\t0"),
    ("net/ipv4/tcp_keepalive_time", "7200"),
    ("net/ipv4/tcp_fin_timeout", "60"),
    ("net/ipv4/tcp_syncookies", "1"),
    ("net/ipv6/conf/all/disable_ipv6", "0"),
    ("vm/dirty_background_ratio", "10"),
    ("vm/dirty_ratio", "20"),
    ("vm/max_map_count", "65530"),
    ("vm/overcommit_kbytes", "0"),
    ("vm/overcommit_memory", "0"),
    ("vm/overcommit_ratio", "50"),
    ("vm/swappiness", "60"),
    ("vm/zone_reclaim_mode", "0"),
)


class SysctlFile(DataInode):
    """SysctlFile is one /proc/sys file: get renders it, set (if any)
    takes the text root writes."""

    __slots__ = ("_get", "_set")

    def __init__(
        self,
        get: Callable[[Task | None], str],
        set_: Callable[[Task, str], None] | None = None,
    ) -> None:
        super().__init__(0o644 if set_ is not None else 0o444)
        self._get = get
        self._set = set_

    def generate(self, t: Task | None) -> bytes:
        # A host name set by sethostname(2) may be any bytes.
        return (self._get(t) + "\n").encode(errors="surrogateescape")

    def check_permissions(self, creds: Credentials, ats: int) -> None:
        # Not even root writes a read-only sysctl (test_perm).
        if ats & MAY_WRITE and not self.mode & 0o222:
            raise SyscallError(errno.EACCES)
        super().check_permissions(creds, ats)

    def write(self, t: Task, data: bytes, offset: int) -> int:
        if self._set is None:
            raise SyscallError(errno.EINVAL)
        if offset != 0:
            # Writes past the start are ignored (sysctl_writes_strict).
            return len(data)
        if len(data) > _MAX_WRITE:
            raise SyscallError(errno.EINVAL)
        self._set(t, data.decode(errors="surrogateescape").split("\n", 1)[0])
        return len(data)


class Tunable:
    """Tunable is a stored sysctl value."""

    __slots__ = ("_mu", "value")

    def __init__(self, value: str) -> None:
        self._mu = threading.Lock()
        self.value = value

    def get(self, t: Task | None) -> str:
        return self.value

    def set(self, t: Task, text: str) -> None:
        text = text.strip()
        if not text:
            raise SyscallError(errno.EINVAL)
        numeric = self.value.replace("\t", " ").split()
        if all(p.lstrip("-").isdigit() for p in numeric):
            parts = text.split()
            if len(parts) != len(numeric) or not all(
                p.lstrip("-").isdigit() for p in parts
            ):
                raise SyscallError(errno.EINVAL)
            text = "\t".join(parts)
        with self._mu:
            self.value = text


class StringTunable:
    """StringTunable is a stored text sysctl (proc_dostring): the written
    text up to a newline, cut to maxlen - 1 bytes, kept as it is (spaces and
    an empty string included)."""

    __slots__ = ("_mu", "maxlen", "value")

    def __init__(self, value: str, maxlen: int) -> None:
        self._mu = threading.Lock()
        self.value = value
        self.maxlen = maxlen

    def get(self, t: Task | None) -> str:
        return self.value

    def set(self, t: Task, text: str) -> None:
        raw = text.encode(errors="surrogateescape").split(b"\0", 1)[0]
        with self._mu:
            self.value = raw[: self.maxlen - 1].decode(errors="surrogateescape")


# CORENAME_MAX_SIZE: the longest core_pattern, its NUL included.
CORENAME_MAX_SIZE = 128


def random_uuid() -> str:
    """Returns a random (version 4, RFC 4122) UUID in its text form.

    Not the uuid module: it imports platform, about 5 ms of every sandbox's
    start-up (docs/performance.md), for this one line.
    """
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _set_hostname(t: Task, text: str) -> None:
    if len(text.encode(errors="surrogateescape")) > 64:
        raise SyscallError(errno.EINVAL)
    uts = uts_of(t)
    with uts.mu:
        uts.hostname = text


def _set_domainname(t: Task, text: str) -> None:
    if len(text.encode(errors="surrogateescape")) > 64:
        raise SyscallError(errno.EINVAL)
    uts = uts_of(t)
    with uts.mu:
        uts.domainname = text


def _set_legacy_tiocsti(kernel: Kernel, text: str) -> None:
    """Sets dev.tty.legacy_tiocsti, a boolean (proc_dobool: any integer,
    non-zero is true)."""
    try:
        value = int(text.strip())
    except ValueError:
        raise SyscallError(errno.EINVAL) from None
    kernel.tty_legacy_tiocsti = value != 0


def _set_ptrace_scope(kernel: Kernel, t: Task, text: str) -> None:
    """Sets kernel.yama.ptrace_scope: 0 to 3, by a holder of CAP_SYS_PTRACE;
    3 is final (yama_dointvec_minmax)."""
    if not t.creds.has_capability(CAP_SYS_PTRACE):
        raise SyscallError(errno.EPERM)
    text = text.strip()
    if not text.isdigit() or int(text) > 3:
        raise SyscallError(errno.EINVAL)
    value = int(text)
    if kernel.yama_ptrace_scope == 3 and value != 3:
        raise SyscallError(errno.EINVAL)
    kernel.yama_ptrace_scope = value


def _hostname(t: Task | None, kernel: Kernel) -> str:
    return (uts_of(t) if t is not None else kernel.root_uts).hostname


def _domainname(t: Task | None, kernel: Kernel) -> str:
    return (uts_of(t) if t is not None else kernel.root_uts).domainname


def sys_tree(kernel: Kernel, boot_id: str) -> StaticDir:
    """Returns the /proc/sys directory."""
    root = StaticDir()

    def add(path: str, inode: Inode) -> None:
        d = root
        *dirs, name = path.split("/")
        for part in dirs:
            key = part.encode()
            child = d.children.get(key)
            if child is None:
                child = StaticDir()
                d.children[key] = child
            assert isinstance(child, StaticDir)
            d = child
        d.children[name.encode()] = inode

    def const(value: str) -> SysctlFile:
        return SysctlFile(lambda t: value)

    add(
        "kernel/hostname",
        SysctlFile(lambda t: _hostname(t, kernel), _set_hostname),
    )
    add(
        "kernel/domainname",
        SysctlFile(lambda t: _domainname(t, kernel), _set_domainname),
    )
    add("kernel/ostype", const(V.SYSNAME))
    add("kernel/osrelease", const(V.RELEASE))
    add("kernel/version", const(V.VERSION))
    add("kernel/pid_max", const(str(PID_MAX)))
    add("kernel/ngroups_max", const(str(NGROUPS_MAX)))
    add("kernel/cap_last_cap", const(str(CAP_LAST_CAP)))
    add("kernel/overflowuid", const("65534"))
    add("kernel/overflowgid", const("65534"))
    add("kernel/random/boot_id", const(boot_id))
    add("kernel/random/uuid", SysctlFile(lambda t: random_uuid()))
    add("kernel/random/entropy_avail", const("256"))
    add("kernel/random/poolsize", const("256"))
    add("kernel/random/urandom_min_reseed_secs", const("60"))
    add("kernel/random/write_wakeup_threshold", const("896"))
    add("kernel/pty/max", const("4096"))
    add("kernel/pty/reserve", const("1024"))
    add("fs/nr_open", const(str(NR_OPEN)))
    add("fs/pipe-max-size", const(str(PIPE_MAX_SIZE)))
    add(
        "fs/file-nr", SysctlFile(lambda t: f"{_open_files(kernel)}\t0\t{(1 << 63) - 1}")
    )
    add(
        "vm/mmap_min_addr",
        const(str(kernel.platform.min_user_address)),
    )
    add(
        "dev/tty/legacy_tiocsti",
        SysctlFile(
            lambda t: str(int(kernel.tty_legacy_tiocsti)),
            lambda t, text: _set_legacy_tiocsti(kernel, text),
        ),
    )
    # TODO(#5): the sentry dumps no core; core_pattern (and core_uses_pid)
    # are only kept for the programs that read them back.
    core_pattern = StringTunable("core", CORENAME_MAX_SIZE)
    add("kernel/core_pattern", SysctlFile(core_pattern.get, core_pattern.set))
    add(
        "kernel/yama/ptrace_scope",
        SysctlFile(
            lambda t: str(kernel.yama_ptrace_scope),
            lambda t, text: _set_ptrace_scope(kernel, t, text),
        ),
    )
    _add_ipc(add, kernel)
    for path, value in _TUNABLES:
        tunable = Tunable(value)
        add(path, SysctlFile(tunable.get, tunable.set))
    return root


def _add_ipc(add: Callable[[str, Inode], None], kernel: Kernel) -> None:
    # The reading or writing task's namespace's.
    for path in IPC_SYSCTLS:
        add(
            path,
            SysctlFile(
                lambda t, path=path: (
                    ipc_of(t) if t is not None else kernel.ipc
                ).sysctl_get(path),
                lambda t, text, path=path: ipc_of(t).sysctl_set(path, text),
            ),
        )


def _open_files(kernel: Kernel) -> int:
    """Counts the open files of every process (nr_files, roughly)."""
    seen: set[int] = set()
    n = 0
    for t in kernel.tasks.live_tasks():
        table = t.fd_table
        if table is None or id(table) in seen:
            continue
        seen.add(id(table))
        n += len(table.fds())
    return n
