"""The sentry's seccomp allowlist: the host system calls the sandbox process
may make once it runs application code.

The list was found by running the test suites with the filter in log mode
(`--seccomp=log`: every call outside the list is allowed and logged by the
kernel, see `dmesg | grep type=1326`) and keeping what the sentry, the
Python runtime under it and the ptrace platform make. It is kept as small
as that allows:

- Host paths: the sandbox process's root holds only a read-only bind of
  the container's root (confine.py), which hostfs serves until the gofer
  does (TODO(#5): then no call here names a path). hostfs walks it one
  component at a time relative to directory descriptors, so openat must
  carry O_NOFOLLOW, and newfstatat AT_SYMLINK_NOFOLLOW or AT_EMPTY_PATH
  (glibc's fstat). No open, stat or execve of a path otherwise.
- No process creation: clone only with the flags of a new thread, and
  clone3 fails with ENOSYS so that glibc falls back to clone, whose flags
  a filter can see (clone3 passes them in memory).
- ioctl only with the terminal requests that host files forward.
- prctl only with the options the runtime uses on itself.
- No sockets of its own, except with host networking (--network=host):
  then TCP and UDP sockets, and the calls and options hostinet makes on
  them (pkg/sentry/socket/hostinet_allow.py); nothing else of the host's
  network (no netlink, raw or unix sockets).

What happens to any other call: see `DEFAULT_ACTION`.
"""

from __future__ import annotations

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import ioctl as I
from pkg.abi.linux import prctl as PR
from pkg.abi.linux import sched as SCH
from pkg.abi.linux import seccomp as SC
from pkg.abi.linux import socket as SK
from pkg.abi.linux import sysno as N
from pkg.sentry.socket import hostinet_allow
from runsc.boot.filter import seccomp
from runsc.boot.filter.seccomp import Arg, Rule

# Calls outside the list fail with EPERM rather than killing the sandbox.
# Either way the call never reaches the host kernel, so the protection is
# the same; the difference is what a mistake in this list costs. The
# sentry is a Python interpreter whose runtime makes incidental host calls
# on rare paths (formatting a traceback, say). With EPERM such a call
# raises OSError in Python, which the sentry's error paths log with a
# traceback naming the code that made it; with KILL_PROCESS the container
# would vanish without a word. The filter is installed with
# SECCOMP_FILTER_FLAG_LOG, so every refusal is also in the kernel log.
DEFAULT_ACTION = seccomp.errno_action(errno.EPERM)

# The clone flags glibc's pthread_create uses (create_thread in
# sysdeps/unix/sysv/linux/createthread.c).
THREAD_CLONE_FLAGS = (
    SCH.CLONE_VM
    | SCH.CLONE_FS
    | SCH.CLONE_FILES
    | SCH.CLONE_SYSVSEM
    | SCH.CLONE_SIGHAND
    | SCH.CLONE_THREAD
    | SCH.CLONE_SETTLS
    | SCH.CLONE_PARENT_SETTID
    | SCH.CLONE_CHILD_CLEARTID
)

# Terminal requests that host files forward (fsimpl/host/host_file.py) and
# that Python's isatty makes.
_TTY_IOCTLS = (
    I.TCGETS,
    I.TCSETS,
    I.TCSETSW,
    I.TCSETSF,
    I.TIOCGWINSZ,
    I.TIOCSWINSZ,
    I.FIONREAD,
    I.TIOCOUTQ,
)

# prctl options the runtime applies to its own threads.
_PRCTL_OPTIONS = (
    PR.PR_SET_NAME,
    PR.PR_GET_NAME,
    PR.PR_GET_DUMPABLE,
    PR.PR_GET_SECCOMP,
    PR.PR_GET_NO_NEW_PRIVS,
    PR.PR_CAPBSET_READ,
    PR.PR_SET_VMA,
)


def _any_of(index: int, values: tuple[int, ...]) -> tuple[tuple[Arg, ...], ...]:
    return tuple((Arg(index, v),) for v in values)


# Calls allowed with any arguments.
_ANY_ARGS = (
    # Descriptors the sentry holds: application stdio, the MemoryFile,
    # sockets of the control server, eventfds of tasks, log files.
    N.SYS_read,
    N.SYS_write,
    N.SYS_readv,
    N.SYS_writev,
    N.SYS_pread64,
    N.SYS_pwrite64,
    N.SYS_preadv,
    N.SYS_pwritev,
    N.SYS_preadv2,
    N.SYS_pwritev2,
    N.SYS_lseek,
    N.SYS_close,
    N.SYS_dup,
    N.SYS_dup2,
    N.SYS_dup3,
    N.SYS_fstat,
    N.SYS_ftruncate,
    N.SYS_fallocate,
    N.SYS_fsync,
    N.SYS_fdatasync,
    # hostfs (see the module docstring; openat and newfstatat below).
    N.SYS_readlinkat,
    N.SYS_getdents64,
    N.SYS_fstatfs,
    N.SYS_eventfd2,
    N.SYS_pipe2,
    N.SYS_poll,
    N.SYS_ppoll,
    N.SYS_select,
    N.SYS_pselect6,
    N.SYS_epoll_create1,
    N.SYS_epoll_ctl,
    N.SYS_epoll_wait,
    N.SYS_epoll_pwait,
    # The control socket: accepting connections, messages with descriptors.
    N.SYS_accept4,
    N.SYS_recvfrom,
    N.SYS_recvmsg,
    N.SYS_sendto,
    N.SYS_sendmsg,
    N.SYS_shutdown,
    N.SYS_getsockopt,
    N.SYS_getsockname,
    # Memory: the interpreter's heap, thread stacks, the MemoryFile mapping.
    N.SYS_mmap,
    N.SYS_munmap,
    N.SYS_mprotect,
    N.SYS_mremap,
    N.SYS_madvise,
    N.SYS_mincore,
    N.SYS_brk,
    N.SYS_membarrier,
    # Threads and their synchronisation.
    N.SYS_futex,
    N.SYS_set_robust_list,
    N.SYS_get_robust_list,
    N.SYS_rseq,
    N.SYS_set_tid_address,
    N.SYS_sched_yield,
    N.SYS_sched_getaffinity,
    N.SYS_sched_setaffinity,
    N.SYS_getcpu,
    N.SYS_exit,
    N.SYS_exit_group,
    N.SYS_gettid,
    N.SYS_getpid,
    N.SYS_getppid,
    N.SYS_getuid,
    N.SYS_geteuid,
    N.SYS_getgid,
    N.SYS_getegid,
    N.SYS_tgkill,
    # Signals: the runtime's handlers, and forwarding to the application.
    N.SYS_rt_sigaction,
    N.SYS_rt_sigprocmask,
    N.SYS_rt_sigreturn,
    N.SYS_restart_syscall,
    N.SYS_sigaltstack,
    # Time.
    N.SYS_clock_gettime,
    N.SYS_clock_getres,
    N.SYS_clock_nanosleep,
    N.SYS_nanosleep,
    N.SYS_gettimeofday,
    N.SYS_getrandom,
    N.SYS_getrusage,
    N.SYS_times,
    # glibc's sysconf(_SC_PHYS_PAGES) (tmpfs sizes itself by the host's
    # memory) ignores a failed sysinfo and reads garbage.
    N.SYS_sysinfo,
    # The ptrace platform: tracing stub threads, waiting for their stops,
    # interrupting them, and the stub processes' pidfds.
    N.SYS_ptrace,
    N.SYS_wait4,
    N.SYS_waitid,
    N.SYS_kill,
    N.SYS_rt_tgsigqueueinfo,
    N.SYS_pidfd_open,
    N.SYS_pidfd_send_signal,
    N.SYS_process_vm_readv,
    N.SYS_process_vm_writev,
    N.SYS_uname,
)


def _hostinet_rules() -> dict[int, Rule]:
    """Returns what host networking adds (pkg/sentry/socket/hostinet.py):
    TCP and UDP sockets made non-blocking and close-on-exec, the calls on
    them that the base list lacks, and setsockopt with the options
    hostinet passes on. (accept4, getsockname, getsockopt, the send and
    receive calls and shutdown are in the base list for the control
    socket.)"""
    out: dict[int, Rule] = dict.fromkeys(
        (N.SYS_bind, N.SYS_connect, N.SYS_listen, N.SYS_getpeername)
    )
    out[N.SYS_socket] = tuple(
        (
            Arg(0, family),
            Arg(1, stype | SK.SOCK_NONBLOCK | SK.SOCK_CLOEXEC),
            Arg(2, 0),
        )
        for family in (SK.AF_INET, SK.AF_INET6)
        for stype in (SK.SOCK_STREAM, SK.SOCK_DGRAM)
    )
    out[N.SYS_setsockopt] = tuple(
        (Arg(1, level), Arg(2, name)) for level, name in sorted(hostinet_allow.OPTIONS)
    )
    return out


def rules(host_network: bool = False) -> dict[int, Rule]:
    """Returns the allowlist: system call number to argument rule.

    Args:
        host_network: add the calls of host networking (--network=host).
    """
    out: dict[int, Rule] = dict.fromkeys(_ANY_ARGS)
    out[N.SYS_clone] = ((Arg(0, THREAD_CLONE_FLAGS),),)
    out[N.SYS_fcntl] = _any_of(
        1,
        (F.F_GETFD, F.F_SETFD, F.F_GETFL, F.F_SETFL, F.F_DUPFD_CLOEXEC),
    )
    ioctls = set(_TTY_IOCTLS)
    if host_network:
        ioctls |= hostinet_allow.HOST_IOCTLS
    out[N.SYS_ioctl] = _any_of(1, tuple(sorted(ioctls)))
    out[N.SYS_newfstatat] = _any_of(
        3,
        (
            F.AT_EMPTY_PATH,
            F.AT_SYMLINK_NOFOLLOW,
            F.AT_EMPTY_PATH | F.AT_SYMLINK_NOFOLLOW,
        ),
    )
    out[N.SYS_openat] = ((Arg(2, F.O_NOFOLLOW, mask=F.O_NOFOLLOW),),)
    out[N.SYS_prctl] = _any_of(0, _PRCTL_OPTIONS)
    if host_network:
        out.update(_hostinet_rules())
    return out


def program(default_action: int = DEFAULT_ACTION, host_network: bool = False) -> bytes:
    """Returns the sentry's filter program."""
    allowed = rules(host_network)
    # clone3 is refused by quiet_program; here it must not be refused too,
    # or this filter's logged refusal would win (same action, and the data
    # of the filter installed last decides; see seccomp(2)).
    allowed[N.SYS_clone3] = None
    return seccomp.build(
        allowed, default_action, bad_arch_action=SC.SECCOMP_RET_KILL_PROCESS
    )


def quiet_program() -> bytes:
    """Returns the second filter: fixed refusals that are part of normal
    operation and so are not logged.

    clone3 fails with ENOSYS so that glibc falls back to clone, whose flags
    the main filter can check (clone3 passes them in memory).
    """
    return seccomp.build(
        {},
        SC.SECCOMP_RET_ALLOW,
        bad_arch_action=SC.SECCOMP_RET_KILL_PROCESS,
        extra_actions={N.SYS_clone3: seccomp.errno_action(errno.ENOSYS)},
    )


def install(mode: str, host_network: bool = False) -> None:
    """Installs the sentry's filters on every thread of the process.

    Args:
        mode: "enforce" (refuse calls outside the list, and log refusals),
            "log" (allow them and log them, for finding what the list
            lacks), or "off".
        host_network: allow the calls of host networking.

    Preconditions: no_new_privs is set.
    """
    if mode not in ("off", "log", "enforce"):
        raise ValueError(f"unknown seccomp mode {mode!r}")
    if mode == "off":
        return
    # First: the main filter refuses seccomp(2) itself.
    seccomp.install(quiet_program())
    if mode == "log":
        seccomp.install(program(SC.SECCOMP_RET_LOG, host_network), log=True)
    else:
        seccomp.install(program(host_network=host_network), log=True)
