"""The amd64 system call table.

Every entry names its support level. Numbers absent from the table return
ENOSYS through the dispatcher, which counts and logs them.
"""

from __future__ import annotations

from pkg.abi.linux import errno
from pkg.abi.linux import sysno as N
from pkg.sentry.syscalls.linux import (
    sys_file,
    sys_futex,
    sys_identity,
    sys_mmap,
    sys_prctl,
    sys_random,
    sys_read_write,
    sys_rlimit,
    sys_signal,
    sys_thread,
    sys_time,
    sys_utsname,
)
from pkg.sentry.syscalls.syscall import Syscall, error, full, partial

# Table size: one past the highest number Linux amd64 defines.
TABLE_SIZE = 512


def entries() -> list[Syscall]:
    """Returns every entry of the table."""
    return [
        full(N.SYS_read, "read", sys_read_write.sys_read),
        full(N.SYS_write, "write", sys_read_write.sys_write),
        full(N.SYS_close, "close", sys_file.sys_close),
        partial(
            N.SYS_mmap,
            "mmap",
            sys_mmap.sys_mmap,
            "anonymous mappings only; file mappings fail with ENODEV (#3)",
        ),
        full(N.SYS_mprotect, "mprotect", sys_mmap.sys_mprotect),
        full(N.SYS_munmap, "munmap", sys_mmap.sys_munmap),
        full(N.SYS_brk, "brk", sys_mmap.sys_brk),
        full(N.SYS_rt_sigaction, "rt_sigaction", sys_signal.sys_rt_sigaction),
        full(N.SYS_rt_sigprocmask, "rt_sigprocmask", sys_signal.sys_rt_sigprocmask),
        full(N.SYS_rt_sigreturn, "rt_sigreturn", sys_signal.sys_rt_sigreturn),
        partial(
            N.SYS_ioctl,
            "ioctl",
            sys_file.sys_ioctl,
            "generic requests and the host terminal's TCGETS/TCSETS*/"
            "TIOCGWINSZ/TIOCSWINSZ/FIONREAD",
        ),
        full(N.SYS_pread64, "pread64", sys_read_write.sys_pread64),
        full(N.SYS_pwrite64, "pwrite64", sys_read_write.sys_pwrite64),
        full(N.SYS_readv, "readv", sys_read_write.sys_readv),
        full(N.SYS_writev, "writev", sys_read_write.sys_writev),
        full(N.SYS_dup, "dup", sys_file.sys_dup),
        full(N.SYS_dup2, "dup2", sys_file.sys_dup2),
        full(N.SYS_nanosleep, "nanosleep", sys_time.sys_nanosleep),
        full(N.SYS_getpid, "getpid", sys_thread.sys_getpid),
        full(N.SYS_exit, "exit", sys_thread.sys_exit),
        full(N.SYS_kill, "kill", sys_signal.sys_kill),
        full(N.SYS_uname, "uname", sys_utsname.sys_uname),
        partial(
            N.SYS_fcntl,
            "fcntl",
            sys_file.sys_fcntl,
            "descriptor and status flag commands; locks and the rest come "
            "with the VFS (#5)",
        ),
        full(N.SYS_getcwd, "getcwd", sys_file.sys_getcwd),
        full(N.SYS_gettimeofday, "gettimeofday", sys_time.sys_gettimeofday),
        full(N.SYS_getrlimit, "getrlimit", sys_rlimit.sys_getrlimit),
        full(N.SYS_getuid, "getuid", sys_identity.sys_getuid),
        full(N.SYS_getgid, "getgid", sys_identity.sys_getgid),
        full(N.SYS_geteuid, "geteuid", sys_identity.sys_geteuid),
        full(N.SYS_getegid, "getegid", sys_identity.sys_getegid),
        full(N.SYS_getppid, "getppid", sys_thread.sys_getppid),
        full(N.SYS_getgroups, "getgroups", sys_identity.sys_getgroups),
        full(N.SYS_getresuid, "getresuid", sys_identity.sys_getresuid),
        full(N.SYS_getresgid, "getresgid", sys_identity.sys_getresgid),
        full(N.SYS_rt_sigpending, "rt_sigpending", sys_signal.sys_rt_sigpending),
        full(N.SYS_sigaltstack, "sigaltstack", sys_signal.sys_sigaltstack),
        full(N.SYS_setrlimit, "setrlimit", sys_rlimit.sys_setrlimit),
        partial(
            N.SYS_arch_prctl,
            "arch_prctl",
            sys_prctl.sys_arch_prctl,
            "no CPUID faulting (ARCH_SET_CPUID fails with ENODEV)",
        ),
        partial(
            N.SYS_prctl,
            "prctl",
            sys_prctl.sys_prctl,
            "names, dumpable, no_new_privs, capability bounding reads (#4)",
        ),
        full(N.SYS_sethostname, "sethostname", sys_utsname.sys_sethostname),
        full(N.SYS_setdomainname, "setdomainname", sys_utsname.sys_setdomainname),
        full(N.SYS_gettid, "gettid", sys_thread.sys_gettid),
        full(N.SYS_tkill, "tkill", sys_signal.sys_tkill),
        full(N.SYS_time, "time", sys_time.sys_time),
        partial(
            N.SYS_futex,
            "futex",
            sys_futex.sys_futex,
            "private wait/wake only; requeue, wake_op and PI arrive with #4",
        ),
        full(N.SYS_set_tid_address, "set_tid_address", sys_thread.sys_set_tid_address),
        full(N.SYS_clock_gettime, "clock_gettime", sys_time.sys_clock_gettime),
        full(N.SYS_clock_getres, "clock_getres", sys_time.sys_clock_getres),
        full(N.SYS_clock_nanosleep, "clock_nanosleep", sys_time.sys_clock_nanosleep),
        full(N.SYS_exit_group, "exit_group", sys_thread.sys_exit_group),
        full(N.SYS_tgkill, "tgkill", sys_signal.sys_tgkill),
        full(N.SYS_set_robust_list, "set_robust_list", sys_thread.sys_set_robust_list),
        full(N.SYS_get_robust_list, "get_robust_list", sys_thread.sys_get_robust_list),
        full(N.SYS_dup3, "dup3", sys_file.sys_dup3),
        full(N.SYS_preadv, "preadv", sys_read_write.sys_preadv),
        full(N.SYS_pwritev, "pwritev", sys_read_write.sys_pwritev),
        full(N.SYS_prlimit64, "prlimit64", sys_rlimit.sys_prlimit64),
        full(N.SYS_getrandom, "getrandom", sys_random.sys_getrandom),
        error(
            N.SYS_rseq,
            "rseq",
            errno.ENOSYS,
            "restartable sequences need CPU preemption detection, which the "
            "ptrace platform lacks; libc falls back",
        ),
    ]


def build_table() -> list[Syscall | None]:
    """Returns the table indexed by system call number."""
    table: list[Syscall | None] = [None] * TABLE_SIZE
    for entry in entries():
        assert table[entry.number] is None, entry.name
        assert N.NAMES[entry.number] == entry.name, entry.name
        table[entry.number] = entry
    return table
