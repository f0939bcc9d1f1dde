"""Processes and threads: clone(2), clone3(2), fork(2), vfork(2),
execve(2), execveat(2), exit(2), exit_group(2), wait4(2), waitid(2),
getpid(2), gettid(2), getppid(2), set_tid_address(2), set_robust_list(2),
get_robust_list(2), pidfd_open(2), pidfd_send_signal(2), pidfd_getfd(2)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import sched as SC
from pkg.abi.linux import signal as S
from pkg.abi.linux import sysno as N
from pkg.abi.linux import wait as W
from pkg.abi.linux.mman import PAGE_SIZE
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel import ptrace
from pkg.sentry.kernel.credentials import CAP_KILL, CAP_SYS_PTRACE, SUID_DUMP_USER
from pkg.sentry.kernel.ipc.namespace import IPCNamespace, ipc_of
from pkg.sentry.kernel.limits import nofile_limit
from pkg.sentry.kernel.pidfd import PIDFD_NONBLOCK, PIDFD_THREAD, PidFD
from pkg.sentry.kernel.sessions import process_group_members
from pkg.sentry.kernel.signals import SignalInfo
from pkg.sentry.kernel.task_acct import Usage
from pkg.sentry.kernel.task_clone import (
    CLONE3_FLAGS,
    MAX_PID_NS_LEVEL,
    CloneOptions,
    check_namespaces,
    clone,
)
from pkg.sentry.kernel.task_exec import copy_strings, execve
from pkg.sentry.kernel.task_exit import wait_status_exited
from pkg.sentry.kernel.task_signals import (
    group_exit,
    send_to_task,
    send_to_thread_group,
)
from pkg.sentry.kernel.task_wait import WaitOptions, do_wait
from pkg.sentry.kernel.uts_namespace import uts_of
from pkg.sentry.syscalls.syscall import Args, full, partial, s32, u32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup

# sizeof(struct robust_list_head).
_ROBUST_LIST_HEAD_SIZE = 24
# struct clone_args sizes of each version.
CLONE_ARGS_SIZE_VER0 = 64
CLONE_ARGS_SIZE_VER1 = 80
CLONE_ARGS_SIZE_VER2 = 88
_CLONE_ARGS = struct.Struct("<11Q")
_INT_MIN = -(1 << 31)
_WAIT4_OPTIONS = (
    W.WNOHANG | W.WUNTRACED | W.WCONTINUED | W.WNOTHREAD | W.WCLONE | W.WALL
)
_WAITID_OPTIONS = (
    W.WNOHANG
    | W.WNOWAIT
    | W.WEXITED
    | W.WSTOPPED
    | W.WCONTINUED
    | W.WNOTHREAD
    | W.WCLONE
    | W.WALL
)
# struct rusage: ru_utime, ru_stime (timevals), then 14 longs.
_RUSAGE = struct.Struct("<qqqq14q")
# The SIGCHLD part of siginfo_t that waitid writes: signo, errno, code, then
# pid, uid, status at offset 16.
_WAITID_HEAD = struct.Struct("<iii4x")
_WAITID_CHLD = struct.Struct("<iii")
# pidfd_send_signal(2) flags.
PIDFD_SIGNAL_THREAD = 1 << 0
PIDFD_SIGNAL_THREAD_GROUP = 1 << 1
PIDFD_SIGNAL_PROCESS_GROUP = 1 << 2
_PIDFD_SIGNAL_FLAGS = (
    PIDFD_SIGNAL_THREAD | PIDFD_SIGNAL_THREAD_GROUP | PIDFD_SIGNAL_PROCESS_GROUP
)


# Creating tasks.


def sys_clone(t: Task, args: Args) -> int:
    """clone(2): flags, stack, parent_tid, child_tid, tls (x86-64 order)."""
    raw = u32(args[0])
    return clone(
        t,
        CloneOptions(
            flags=raw & ~SC.CSIGNAL,
            exit_signal=raw & SC.CSIGNAL,
            stack=args[1],
            parent_tid=args[2],
            child_tid=args[3],
            tls=args[4],
            # CLONE_PIDFD returns the descriptor through parent_tid.
            pidfd=args[2],
        ),
    )


def sys_clone3(t: Task, args: Args) -> int:
    """clone3(2)."""
    addr, size = args[0], args[1]
    if size > PAGE_SIZE:
        raise SyscallError(errno.E2BIG)
    if size < CLONE_ARGS_SIZE_VER0:
        raise SyscallError(errno.EINVAL)
    raw = t.copy_in(addr, size)
    # copy_struct_from_user: a larger struct is fine if the tail is zero.
    if size > _CLONE_ARGS.size and any(raw[_CLONE_ARGS.size :]):
        raise SyscallError(errno.E2BIG)
    raw = raw[: _CLONE_ARGS.size].ljust(_CLONE_ARGS.size, b"\0")
    (
        flags,
        pidfd,
        child_tid,
        parent_tid,
        exit_signal,
        stack,
        stack_size,
        tls,
        set_tid,
        set_tid_size,
        cgroup,
    ) = _CLONE_ARGS.unpack(raw)
    if set_tid_size > MAX_PID_NS_LEVEL:
        raise SyscallError(errno.EINVAL)
    if bool(set_tid) != bool(set_tid_size):
        raise SyscallError(errno.EINVAL)
    if exit_signal & ~SC.CSIGNAL or exit_signal > S.SIGRTMAX:
        raise SyscallError(errno.EINVAL)
    if flags & SC.CLONE_INTO_CGROUP and (
        cgroup > 0x7FFFFFFF or size < CLONE_ARGS_SIZE_VER2
    ):
        raise SyscallError(errno.EINVAL)
    tids: tuple[int, ...] = ()
    if set_tid:
        tids = struct.unpack(f"<{set_tid_size}I", t.copy_in(set_tid, 4 * set_tid_size))
    # clone3_args_valid.
    if flags & ~CLONE3_FLAGS:
        raise SyscallError(errno.EINVAL)
    if flags & (SC.CLONE_DETACHED | (SC.CSIGNAL & ~SC.CLONE_NEWTIME)):
        raise SyscallError(errno.EINVAL)
    if flags & SC.CLONE_SIGHAND and flags & SC.CLONE_CLEAR_SIGHAND:
        raise SyscallError(errno.EINVAL)
    if flags & (SC.CLONE_THREAD | SC.CLONE_PARENT) and exit_signal:
        raise SyscallError(errno.EINVAL)
    if stack == 0:
        if stack_size:
            raise SyscallError(errno.EINVAL)
    else:
        if stack_size == 0 or stack + stack_size > t.mm.max_address:
            raise SyscallError(errno.EINVAL)
        # The stack grows down from the top of the area given.
        stack += stack_size
    return clone(
        t,
        CloneOptions(
            flags=flags,
            exit_signal=exit_signal,
            stack=stack,
            parent_tid=parent_tid,
            child_tid=child_tid,
            tls=tls,
            pidfd=pidfd,
            set_tid=tids,
            cgroup=cgroup,
        ),
    )


def sys_fork(t: Task, args: Args) -> int:
    """fork(2)."""
    return clone(t, CloneOptions(flags=0, exit_signal=S.SIGCHLD))


def sys_vfork(t: Task, args: Args) -> int:
    """vfork(2)."""
    return clone(
        t,
        CloneOptions(flags=SC.CLONE_VFORK | SC.CLONE_VM, exit_signal=S.SIGCHLD),
    )


_UNSHARE_FLAGS = (
    SC.CLONE_THREAD
    | SC.CLONE_FS
    | SC.CLONE_NEWNS
    | SC.CLONE_SIGHAND
    | SC.CLONE_VM
    | SC.CLONE_FILES
    | SC.CLONE_SYSVSEM
    | SC.CLONE_NEWUTS
    | SC.CLONE_NEWIPC
    | SC.CLONE_NEWNET
    | SC.CLONE_NEWUSER
    | SC.CLONE_NEWPID
    | SC.CLONE_NEWCGROUP
    | SC.CLONE_NEWTIME
)


def sys_unshare(t: Task, args: Args) -> int:
    """unshare(2): gives the caller private copies of what it shares.

    The descriptor table and the filesystem context are copied if shared;
    the process, the signal actions and the address space can only be
    "unshared" when nothing shares them, as in Linux.
    """
    flags = u32(args[0])
    # The implications ksys_unshare adds.
    if flags & SC.CLONE_NEWUSER:
        flags |= SC.CLONE_THREAD | SC.CLONE_FS
    if flags & SC.CLONE_VM:
        flags |= SC.CLONE_SIGHAND
    if flags & SC.CLONE_SIGHAND:
        flags |= SC.CLONE_THREAD
    if flags & SC.CLONE_NEWNS:
        flags |= SC.CLONE_FS
    if flags & ~_UNSHARE_FLAGS:
        raise SyscallError(errno.EINVAL)
    ts = t.kernel.tasks
    with ts.mu:
        if flags & (SC.CLONE_THREAD | SC.CLONE_SIGHAND | SC.CLONE_VM) and (
            len(t.tg.tasks) > 1
        ):
            raise SyscallError(errno.EINVAL)
        if flags & (SC.CLONE_SIGHAND | SC.CLONE_VM):
            sh = t.tg.signal_handlers
            if any(
                other is not t.tg and other.signal_handlers is sh
                for other in ts.thread_groups.values()
            ):
                raise SyscallError(errno.EINVAL)
        if flags & SC.CLONE_VM and t.mm.users > 1:
            raise SyscallError(errno.EINVAL)
    check_namespaces(t, flags & ~SC.CLONE_NEWUSER)
    if flags & SC.CLONE_NEWUSER:
        # TODO(#4): user namespaces; as a kernel built without them.
        raise SyscallError(errno.EINVAL)

    if flags & SC.CLONE_NEWNS:
        # A new namespace comes with a context of its own (unshare_fs and
        # copy_mnt_ns); the old one stays with whoever else used it.
        old_fs = t.fs
        t.fs = old_fs.fork_new_mount_ns(t.kernel.vfs)
        old_fs.dec_users()
    elif flags & SC.CLONE_FS and t.fs.users > 1:
        old_fs = t.fs
        t.fs = old_fs.fork()
        old_fs.dec_users()
    if flags & SC.CLONE_FILES and t.fd_table.users > 1:
        new_fdt = t.fd_table.fork()
        with ts.mu:
            t.fd_table.users -= 1
            t.fd_table = new_fdt
    if flags & SC.CLONE_NEWUTS:
        t.uts_ns = uts_of(t).clone()
    if flags & SC.CLONE_NEWIPC:
        # The old namespace's semaphores become unreachable: the undo list
        # is applied first, as exit_sem does (only a lone thread's: other
        # threads share the list and stay in the old namespace).
        if len(t.tg.tasks) == 1:
            ipc_of(t).sem.exit_undo(t)
        old = t.ipc_ns
        t.ipc_ns = IPCNamespace(t.kernel.mf)
        t.ipc_ns.inc_users()
        if old is not None:
            old.dec_users()
    # CLONE_SYSVSEM: SEM_UNDO lists are per process already (ipc/sem.py).
    return 0


# Running a new program.


def _execve(
    t: Task, dirfd: int, path_addr: int, argv: int, envp: int, flags: int
) -> int:
    path = t.copy_in_string(path_addr)
    argv_list = copy_strings(t, argv)
    envv = copy_strings(t, envp)
    old_tid = t.tid
    execve(t, dirfd, path, argv_list, envv, flags)
    if t.ptrace is not None:
        ptrace.exec_event(t, old_tid)
    return 0


def sys_execve(t: Task, args: Args) -> int:
    """execve(2)."""
    return _execve(t, F.AT_FDCWD, args[0], args[1], args[2], 0)


def sys_execveat(t: Task, args: Args) -> int:
    """execveat(2)."""
    return _execve(t, s32(args[0]), args[1], args[2], args[3], s32(args[4]))


# Exiting.


def sys_exit(t: Task, args: Args) -> int:
    """exit(2): ends the calling thread only."""
    with t.tg.signal_handlers.mu:
        t.exit_status = wait_status_exited(args[0])
        t.exiting = True
        t.interrupted = True
    return 0


def sys_exit_group(t: Task, args: Args) -> int:
    """exit_group(2): ends every thread of the process."""
    group_exit(t, wait_status_exited(args[0]))
    return 0


# Waiting.


def write_rusage(t: Task, addr: int, usage: Usage) -> None:
    """Writes a struct rusage with the times and maxrss of usage."""
    us, ss = usage.utime_ns // 1000, usage.stime_ns // 1000
    fields = [0] * 14
    fields[0] = usage.max_rss_kb
    fields[12] = usage.nvcsw
    fields[13] = usage.nivcsw
    t.copy_out(
        addr,
        _RUSAGE.pack(
            us // 1_000_000, us % 1_000_000, ss // 1_000_000, ss % 1_000_000, *fields
        ),
    )


def sys_wait4(t: Task, args: Args) -> int:
    """wait4(2)."""
    pid, status_addr, options, ru = s32(args[0]), args[1], u32(args[2]), args[3]
    if options & ~_WAIT4_OPTIONS:
        raise SyscallError(errno.EINVAL)
    # -INT_MIN does not exist.
    if pid == _INT_MIN:
        raise SyscallError(errno.ESRCH)
    if pid < -1:
        opts = WaitOptions(W.P_PGID, -pid, options | W.WEXITED)
    elif pid == -1:
        opts = WaitOptions(W.P_ALL, 0, options | W.WEXITED)
    elif pid == 0:
        opts = WaitOptions(W.P_PGID, t.tg.pgid, options | W.WEXITED)
    else:
        opts = WaitOptions(W.P_PID, pid, options | W.WEXITED)
    result = do_wait(t, opts)
    if result is None:
        return 0
    if status_addr:
        t.mm.write_i32(status_addr, result.wait_status)
    if ru:
        write_rusage(t, ru, result.usage)
    return result.pid


def _pidfd(t: Task, fd: int) -> PidFD:
    f = t.fd_table.get(fd)
    if not isinstance(f, PidFD):
        raise SyscallError(errno.EBADF)
    return f


def sys_waitid(t: Task, args: Args) -> int:
    """waitid(2)."""
    which, upid, infop, options, ru = (
        s32(args[0]),
        s32(args[1]),
        args[2],
        u32(args[3]),
        args[4],
    )
    if options & ~_WAITID_OPTIONS:
        raise SyscallError(errno.EINVAL)
    if not options & (W.WEXITED | W.WSTOPPED | W.WCONTINUED):
        raise SyscallError(errno.EINVAL)
    if which == W.P_ALL:
        opts = WaitOptions(W.P_ALL, 0, options)
    elif which == W.P_PID:
        if upid <= 0:
            raise SyscallError(errno.EINVAL)
        opts = WaitOptions(W.P_PID, upid, options)
    elif which == W.P_PGID:
        if upid < 0:
            raise SyscallError(errno.EINVAL)
        opts = WaitOptions(W.P_PGID, upid or t.tg.pgid, options)
    elif which == W.P_PIDFD:
        if upid < 0:
            raise SyscallError(errno.EINVAL)
        f = _pidfd(t, upid)
        if f.nonblocking:
            options |= W.WNOHANG
        opts = WaitOptions(W.P_PID, f.tg.tgid, options, target=f.tg)
    else:
        raise SyscallError(errno.EINVAL)
    result = do_wait(t, opts)
    if result is not None and ru:
        write_rusage(t, ru, result.usage)
    if not infop:
        return 0
    if result is None:
        t.copy_out(infop, _WAITID_HEAD.pack(0, 0, 0) + _WAITID_CHLD.pack(0, 0, 0))
    else:
        t.copy_out(
            infop,
            _WAITID_HEAD.pack(S.SIGCHLD, 0, result.code)
            + _WAITID_CHLD.pack(result.pid, result.uid, result.status),
        )
    return 0


# Ids.


def sys_getpid(t: Task, args: Args) -> int:
    """getpid(2)."""
    return t.tg.tgid


def sys_gettid(t: Task, args: Args) -> int:
    """gettid(2)."""
    return t.tid


def sys_getppid(t: Task, args: Args) -> int:
    """getppid(2): 0 for the container's init, whose parent is outside."""
    with t.kernel.tasks.mu:
        parent = t.tg.parent
        return parent.tgid if parent is not None else 0


def sys_set_tid_address(t: Task, args: Args) -> int:
    """set_tid_address(2)."""
    t.clear_child_tid = args[0]
    return t.tid


def sys_set_robust_list(t: Task, args: Args) -> int:
    """set_robust_list(2). The list is walked at thread exit (#4)."""
    if args[1] != _ROBUST_LIST_HEAD_SIZE:
        raise SyscallError(errno.EINVAL)
    t.robust_list = (args[0], args[1])
    return 0


def sys_get_robust_list(t: Task, args: Args) -> int:
    """get_robust_list(2) for the calling thread or another (pid != 0)."""
    pid, head_ptr, len_ptr = s32(args[0]), args[1], args[2]
    target = t
    if pid:
        found = t.kernel.tasks.find_task(pid)
        if found is None:
            raise SyscallError(errno.ESRCH)
        if found.tg is not t.tg and not may_access(t, found.tg):
            raise SyscallError(errno.EPERM)
        target = found
    t.mm.write_u64(head_ptr, target.robust_list[0])
    t.mm.write_u64(len_ptr, _ROBUST_LIST_HEAD_SIZE)
    return 0


# Process descriptors.


def may_access(t: Task, target: ThreadGroup) -> bool:
    """Reports whether t may inspect or take over target as a ptrace
    attach would (PTRACE_MODE_ATTACH_REALCREDS): same real ids as all of
    target's ids and a dumpable target, or CAP_SYS_PTRACE."""
    if target is t.tg:
        return True
    c = t.creds
    if c.has_capability(CAP_SYS_PTRACE):
        return True
    leader = target.leader
    if leader is None:
        return False
    tc = leader.creds
    return (
        c.ruid == tc.ruid == tc.euid == tc.suid
        and c.rgid == tc.rgid == tc.egid == tc.sgid
        and target.dumpable == SUID_DUMP_USER
    )


def may_kill(t: Task, target: Task) -> bool:
    """Reports whether t may send a signal to target (kill_ok_by_cred)."""
    c, tc = t.creds, target.creds
    if c.has_capability(CAP_KILL):
        return True
    return bool({c.euid, c.ruid} & {tc.ruid, tc.suid})


def sys_pidfd_open(t: Task, args: Args) -> int:
    """pidfd_open(2)."""
    pid, flags = s32(args[0]), u32(args[1])
    if flags & ~(PIDFD_NONBLOCK | PIDFD_THREAD):
        raise SyscallError(errno.EINVAL)
    if pid <= 0:
        raise SyscallError(errno.EINVAL)
    ts = t.kernel.tasks
    with ts.mu:
        tg = ts.thread_groups.get(pid)
        task = ts.tasks.get(pid)
        if tg is None:
            if task is None:
                raise SyscallError(errno.ESRCH)
            if not flags & PIDFD_THREAD:
                # A thread that does not lead its process (Linux 6.9 and
                # later say ENOENT).
                raise SyscallError(errno.ENOENT)
            tg = task.tg
        if flags & PIDFD_THREAD and task is None:
            # The zombie leader of a process still names its thread.
            task = tg.leader
    f = PidFD(tg, task if flags & PIDFD_THREAD else None, flags)
    try:
        return t.fd_table.new_fd(f, cloexec=True, limit=nofile_limit(t))
    except SyscallError:
        f.dec_ref()
        raise


def sys_pidfd_send_signal(t: Task, args: Args) -> int:
    """pidfd_send_signal(2)."""
    fd, signo, info_addr, flags = s32(args[0]), s32(args[1]), args[2], u32(args[3])
    if flags & ~_PIDFD_SIGNAL_FLAGS:
        raise SyscallError(errno.EINVAL)
    if bin(flags).count("1") > 1:
        raise SyscallError(errno.EINVAL)
    f = _pidfd(t, fd)
    if flags == 0:
        scope = PIDFD_SIGNAL_THREAD if f.thread else PIDFD_SIGNAL_THREAD_GROUP
    else:
        scope = flags
    if not 0 <= signo <= S.SIGRTMAX:
        raise SyscallError(errno.EINVAL)
    if info_addr:
        raw = t.copy_in(info_addr, S.SIGINFO_SIZE)
        si_signo, si_errno, si_code = struct.unpack_from("<iii", raw)
        if si_signo != signo:
            raise SyscallError(errno.EINVAL)
        self_target = f.tg is t.tg and scope != PIDFD_SIGNAL_PROCESS_GROUP
        if not self_target and (si_code >= 0 or si_code == S.SI_TKILL):
            raise SyscallError(errno.EPERM)
        pid, uid, value = struct.unpack_from("<iiQ", raw, 16)
        info = SignalInfo(
            signo=signo, code=si_code, errno=si_errno, pid=pid, uid=uid, value=value
        )
    else:
        code = S.SI_TKILL if scope == PIDFD_SIGNAL_THREAD else S.SI_USER
        info = SignalInfo(signo=signo, code=code, pid=t.tg.tgid, uid=t.creds.ruid)

    if scope == PIDFD_SIGNAL_PROCESS_GROUP:
        targets = process_group_members(t.kernel.tasks, f.tg.pgid)
        if not targets:
            raise SyscallError(errno.ESRCH)
        sent = False
        err = errno.ESRCH
        for tg in targets:
            try:
                _signal_process(t, tg, info)
                sent = True
            except SyscallError as e:
                err = e.errno
        if not sent:
            raise SyscallError(err)
        return 0
    if scope == PIDFD_SIGNAL_THREAD:
        target = f.task if f.task is not None else f.tg.leader
        if target is None or t.kernel.tasks.find_task(target.tid) is not target:
            raise SyscallError(errno.ESRCH)
        if not may_kill(t, target):
            raise SyscallError(errno.EPERM)
        if signo:
            send_to_task(target, info)
        return 0
    _signal_process(t, f.tg, info)
    return 0


def _signal_process(t: Task, tg: ThreadGroup, info: SignalInfo) -> None:
    if tg.reaped:
        raise SyscallError(errno.ESRCH)
    leader = tg.leader
    if leader is not None and not may_kill(t, leader):
        raise SyscallError(errno.EPERM)
    if info.signo:
        send_to_thread_group(tg, info)


def sys_pidfd_getfd(t: Task, args: Args) -> int:
    """pidfd_getfd(2)."""
    pidfd, targetfd, flags = s32(args[0]), s32(args[1]), u32(args[2])
    if flags:
        raise SyscallError(errno.EINVAL)
    f = _pidfd(t, pidfd)
    tg = f.tg
    with t.kernel.tasks.mu:
        if tg.zombie or tg.reaped or not tg.tasks:
            raise SyscallError(errno.ESRCH)
        table = tg.tasks[0].fd_table
    if not may_access(t, tg):
        raise SyscallError(errno.EPERM)
    file = table.get(targetfd)
    file.inc_ref()
    try:
        return t.fd_table.new_fd(file, cloexec=True, limit=nofile_limit(t))
    except SyscallError:
        file.dec_ref()
        raise


ENTRIES = [
    partial(
        N.SYS_clone,
        "clone",
        sys_clone,
        "mount, UTS and IPC namespaces only (other CLONE_NEW* fail with EINVAL, "
        "or EPERM without CAP_SYS_ADMIN); CLONE_SYSVSEM and CLONE_IO are "
        "accepted without effect (#4)",
    ),
    partial(
        N.SYS_clone3,
        "clone3",
        sys_clone3,
        "as clone; no cgroups (CLONE_INTO_CGROUP fails with EBADF) (#4)",
    ),
    full(N.SYS_fork, "fork", sys_fork),
    full(N.SYS_vfork, "vfork", sys_vfork),
    partial(
        N.SYS_execve,
        "execve",
        sys_execve,
        "set-id bits and file capabilities are not honoured; paths are "
        "host paths until the VFS resolves them (#5)",
    ),
    partial(
        N.SYS_execveat,
        "execveat",
        sys_execveat,
        "as execve; a descriptor cannot serve as the directory or file until "
        "the VFS lands (#5)",
    ),
    full(N.SYS_exit, "exit", sys_exit),
    full(N.SYS_exit_group, "exit_group", sys_exit_group),
    full(N.SYS_wait4, "wait4", sys_wait4),
    full(N.SYS_waitid, "waitid", sys_waitid),
    full(N.SYS_getpid, "getpid", sys_getpid),
    full(N.SYS_getppid, "getppid", sys_getppid),
    full(N.SYS_gettid, "gettid", sys_gettid),
    full(N.SYS_set_tid_address, "set_tid_address", sys_set_tid_address),
    full(N.SYS_set_robust_list, "set_robust_list", sys_set_robust_list),
    full(N.SYS_get_robust_list, "get_robust_list", sys_get_robust_list),
    partial(
        N.SYS_unshare,
        "unshare",
        sys_unshare,
        "descriptor tables, fs contexts, mount, UTS and IPC namespaces; other "
        "namespaces fail as in clone (#4)",
    ),
    full(N.SYS_pidfd_open, "pidfd_open", sys_pidfd_open),
    full(N.SYS_pidfd_send_signal, "pidfd_send_signal", sys_pidfd_send_signal),
    full(N.SYS_pidfd_getfd, "pidfd_getfd", sys_pidfd_getfd),
]
