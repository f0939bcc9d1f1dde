"""Creating tasks: clone(2), clone3(2), fork(2) and vfork(2) (kernel/fork.c).

A new task starts as a copy of its parent's registers and FPU state, with
rax 0, on its own host thread. What else it shares with the parent is chosen
by the clone flags: the address space (CLONE_VM), the descriptor table
(CLONE_FILES), the root, working directory and umask (CLONE_FS), the signal
actions (CLONE_SIGHAND) and the process (CLONE_THREAD). Whatever is not
shared is copied; the address space copy is the memory manager's
copy-on-write fork.

The flag combinations Linux refuses are refused here with the same errno,
checked in the same order. Of the namespaces only mount (CLONE_NEWNS), UTS
(CLONE_NEWUTS) and IPC (CLONE_NEWIPC) namespaces exist: another CLONE_NEW*
flag fails with EPERM without CAP_SYS_ADMIN and EINVAL with it, as on a
kernel built without that namespace type.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import limits as L
from pkg.abi.linux import ptrace as PT
from pkg.abi.linux import sched as SC
from pkg.abi.linux import signal as S
from pkg.errors.syscall_error import SyscallError, from_os_error
from pkg.platform import platform as P
from pkg.sentry.kernel import ptrace
from pkg.sentry.kernel.credentials import (
    CAP_SYS_ADMIN,
    CAP_SYS_RESOURCE,
)
from pkg.sentry.kernel.ipc.namespace import IPCNamespace
from pkg.sentry.kernel.limits import INFINITY, nofile_limit
from pkg.sentry.kernel.pidfd import PidFD
from pkg.sentry.kernel.sessions import join_process_group_locked
from pkg.sentry.kernel.task import Task
from pkg.sentry.kernel.task_block import block_killable
from pkg.sentry.kernel.task_set import PID_MAX
from pkg.sentry.kernel.task_signals import inherit_for_clone, join_group_stop_locked
from pkg.sentry.kernel.thread_group import ThreadGroup
from pkg.sentry.kernel.uts_namespace import uts_of

if TYPE_CHECKING:
    from pkg.sentry.kernel.fd_table import FDTable
    from pkg.sentry.kernel.fs_context import FSContext
    from pkg.sentry.kernel.signals import SignalHandlers
    from pkg.sentry.mm.memory_manager import MemoryManager

log = logging.getLogger(__name__)

# Namespace flags (CLONE_NEWTIME only through clone3 and unshare).
CLONE_NEW_FLAGS = (
    SC.CLONE_NEWNS
    | SC.CLONE_NEWCGROUP
    | SC.CLONE_NEWUTS
    | SC.CLONE_NEWIPC
    | SC.CLONE_NEWUSER
    | SC.CLONE_NEWPID
    | SC.CLONE_NEWNET
)
# The flags clone3 accepts (CLONE_LEGACY_FLAGS plus the clone3-only ones).
CLONE_LEGACY_FLAGS = 0xFFFFFFFF
CLONE3_FLAGS = CLONE_LEGACY_FLAGS | SC.CLONE_CLEAR_SIGHAND | SC.CLONE_INTO_CGROUP
# Depth of nested PID namespaces a set_tid array may name.
MAX_PID_NS_LEVEL = 32
CAP_CHECKPOINT_RESTORE = 40
# FS and GS bases must be canonical user addresses (TASK_SIZE_MAX).
_TASK_SIZE_MAX = 0x7FFFFFFFF000


@dataclass(slots=True)
class CloneOptions:
    """CloneOptions is struct kernel_clone_args: what clone, clone3, fork
    and vfork ask for, already decoded."""

    # CLONE_* flags, without the exit signal.
    flags: int
    # Signal sent to the parent when the child exits (0: none).
    exit_signal: int = S.SIGCHLD
    # The child's stack pointer; 0 keeps the parent's.
    stack: int = 0
    # Where CLONE_PARENT_SETTID writes the child's tid (parent's memory).
    parent_tid: int = 0
    # Where CLONE_CHILD_SETTID writes, and CLONE_CHILD_CLEARTID clears, the
    # child's tid (child's memory).
    child_tid: int = 0
    # The child's FS base for CLONE_SETTLS.
    tls: int = 0
    # Where CLONE_PIDFD writes the new pidfd (parent's memory).
    pidfd: int = 0
    # clone3's set_tid: the ids to give the child, innermost namespace
    # first.
    set_tid: tuple[int, ...] = ()
    # clone3's cgroup descriptor (CLONE_INTO_CGROUP).
    cgroup: int = 0


class VforkDone:
    """VforkDone ties a vfork child to its waiting parent (vfork_done)."""

    __slots__ = ("done", "parent")

    def __init__(self, parent: Task) -> None:
        self.parent = parent
        self.done = False


def release_vfork_parent(t: Task) -> None:
    """Lets t's vfork parent run again; t has exec'd or is exiting
    (mm_release). Called on t's own thread."""
    vd = t.vfork_done
    if vd is None:
        return
    t.vfork_done = None
    assert isinstance(vd, VforkDone)
    vd.done = True
    vd.parent.wake()


def _check_flags(t: Task, opts: CloneOptions) -> None:
    """Refuses flag combinations as copy_process does, in its order."""
    flags = opts.flags
    if flags & (SC.CLONE_NEWNS | SC.CLONE_FS) == SC.CLONE_NEWNS | SC.CLONE_FS:
        raise SyscallError(errno.EINVAL)
    if flags & (SC.CLONE_NEWUSER | SC.CLONE_FS) == SC.CLONE_NEWUSER | SC.CLONE_FS:
        raise SyscallError(errno.EINVAL)
    if flags & SC.CLONE_THREAD and not flags & SC.CLONE_SIGHAND:
        raise SyscallError(errno.EINVAL)
    if flags & SC.CLONE_SIGHAND and not flags & SC.CLONE_VM:
        raise SyscallError(errno.EINVAL)
    # A namespace's init cannot make siblings: they would be orphans of the
    # namespace's parent.
    if flags & SC.CLONE_PARENT and t.tg is t.kernel.init_tg:
        raise SyscallError(errno.EINVAL)
    if flags & SC.CLONE_THREAD and flags & (SC.CLONE_NEWUSER | SC.CLONE_NEWPID):
        raise SyscallError(errno.EINVAL)
    if flags & SC.CLONE_PIDFD and flags & SC.CLONE_DETACHED:
        raise SyscallError(errno.EINVAL)
    if (
        flags & SC.CLONE_PIDFD
        and flags & SC.CLONE_PARENT_SETTID
        and opts.pidfd == opts.parent_tid
    ):
        raise SyscallError(errno.EINVAL)
    if flags & SC.CLONE_SETTLS and opts.tls >= _TASK_SIZE_MAX:
        raise SyscallError(errno.EPERM)


def check_namespaces(t: Task, flags: int) -> None:
    """Refuses namespace flags: EPERM without CAP_SYS_ADMIN (except for
    CLONE_NEWUSER alone), else EINVAL as a kernel without namespaces."""
    namespaces = flags & (CLONE_NEW_FLAGS | SC.CLONE_NEWTIME)
    if not namespaces:
        return
    if namespaces & ~SC.CLONE_NEWUSER and not t.creds.has_capability(CAP_SYS_ADMIN):
        raise SyscallError(errno.EPERM)
    if namespaces & ~(SC.CLONE_NEWUTS | SC.CLONE_NEWNS | SC.CLONE_NEWIPC):
        # TODO(#4): network, PID, user, cgroup and time namespaces; until
        # then the sandbox behaves as a kernel built without them.
        raise SyscallError(errno.EINVAL)


def check_nproc(t: Task) -> None:
    """Applies RLIMIT_NPROC to the creation of a task by t.

    Linux counts every task (thread) of the caller's real user; root and
    holders of CAP_SYS_RESOURCE or CAP_SYS_ADMIN are exempt.

    Raises:
        SyscallError: EAGAIN at the limit.
    """
    limit = t.tg.limits.soft(L.RLIMIT_NPROC)
    c = t.creds
    if (
        limit == INFINITY
        or c.ruid == 0
        or c.has_capability(CAP_SYS_RESOURCE)
        or c.has_capability(CAP_SYS_ADMIN)
    ):
        return
    uid = c.ruid
    n = sum(1 for x in t.kernel.tasks.live_tasks() if x.creds.ruid == uid)
    if n >= limit:
        raise SyscallError(errno.EAGAIN)


def _check_set_tid(t: Task, set_tid: tuple[int, ...]) -> int:
    """Returns the id set_tid asks for (0 for any), as alloc_pid checks it
    for the sandbox's single PID namespace."""
    if not set_tid:
        return 0
    if len(set_tid) > 1:
        raise SyscallError(errno.EINVAL)
    tid = set_tid[0]
    if tid >= 1 << 31:
        tid -= 1 << 32
    if tid < 1 or tid >= PID_MAX:
        raise SyscallError(errno.EINVAL)
    c = t.creds
    if not (
        c.has_capability(CAP_SYS_ADMIN) or c.has_capability(CAP_CHECKPOINT_RESTORE)
    ):
        raise SyscallError(errno.EPERM)
    return tid


def _pending_signal(t: Task) -> bool:
    with t.tg.signal_handlers.mu:
        return bool((t.pending.mask | t.tg.pending.mask) & ~t.signal_mask)


def clone(t: Task, opts: CloneOptions) -> int:
    """Creates a task as clone(2) does and returns its id.

    Called on t's own thread, from its system call.

    Raises:
        SyscallError: the errno clone fails with; ERESTARTNOINTR if a signal
            is pending, so that it is delivered first and the call is made
            again.
    """
    flags = opts.flags
    _check_flags(t, opts)
    if _pending_signal(t):
        raise SyscallError(errno.ERESTARTNOINTR)
    check_nproc(t)
    check_namespaces(t, flags)
    if t.sched.policy == SC.SCHED_DEADLINE and not t.sched.reset_on_fork:
        # sched_fork: a deadline task's bandwidth cannot be split.
        raise SyscallError(errno.EAGAIN)
    if flags & (SC.CLONE_NEWIPC | SC.CLONE_SYSVSEM) == (
        SC.CLONE_NEWIPC | SC.CLONE_SYSVSEM
    ):
        # The semaphore undo list cannot be shared into a namespace where
        # its sets do not exist (copy_namespaces).
        raise SyscallError(errno.EINVAL)
    if flags & SC.CLONE_INTO_CGROUP:
        # TODO(#4): no cgroup file system; no descriptor names a cgroup.
        raise SyscallError(errno.EBADF)
    wanted_tid = _check_set_tid(t, opts.set_tid)

    kernel = t.kernel
    parent_tg = t.tg
    # What the child gets that is not shared.
    try:
        mm: MemoryManager = t.mm if flags & SC.CLONE_VM else t.mm.fork()
    except OSError as e:
        # The platform could not make the child's address space on the host
        # (EAGAIN: a host pid limit; ENOMEM): the fork fails as Linux's.
        raise from_os_error(e) from None
    fd_table: FDTable = t.fd_table if flags & SC.CLONE_FILES else t.fd_table.fork()
    if flags & SC.CLONE_NEWNS:
        fs: FSContext = t.fs.fork_new_mount_ns(kernel.vfs)
    elif flags & SC.CLONE_FS:
        fs = t.fs
    else:
        fs = t.fs.fork()
    sh: SignalHandlers = parent_tg.signal_handlers
    if not flags & SC.CLONE_SIGHAND:
        sh = sh.copy()
        if flags & SC.CLONE_CLEAR_SIGHAND:
            sh.reset_for_exec()

    def undo_copies() -> None:
        if mm is not t.mm:
            mm.release()
        if fd_table is not t.fd_table:
            fd_table.close_all()
        if fs is not t.fs:
            fs.dec_users()

    try:
        with kernel.tasks.mu:
            tid = (
                kernel.tasks.allocate_specific_id(wanted_tid)
                if wanted_tid
                else kernel.tasks.allocate_id()
            )
            kernel.stats.forks += 1
    except BaseException:
        undo_copies()
        raise

    # The child's registers: the parent's, returning 0, with the FPU state
    # pulled from the parent's context so that it is pushed into the
    # child's on its first switch.
    state = kernel.platform.new_state()
    if not t.state.fpstate_valid:
        t.context.pull_fpstate(t.state)
    state.copy_from(t.state)
    regs = state.regs
    regs[P.RAX] = 0
    if opts.stack:
        regs[P.RSP] = opts.stack
    if flags & SC.CLONE_SETTLS:
        regs[P.FS_BASE] = opts.tls

    if flags & SC.CLONE_THREAD:
        tg = parent_tg
    else:
        tg = ThreadGroup(
            kernel,
            tid,
            sh,
            parent_tg.limits.copy(),
            parent=parent_tg.parent if flags & SC.CLONE_PARENT else parent_tg,
        )
        if flags & SC.CLONE_PARENT:
            tg.real_parent = parent_tg.real_parent
            tg.exit_signal = parent_tg.exit_signal
            tg.parent_exec_id = parent_tg.parent_exec_id
        else:
            tg.real_parent = t
            tg.exit_signal = opts.exit_signal
            tg.parent_exec_id = parent_tg.exec_id
        tg.dumpable = parent_tg.dumpable
        tg.ctty_detached = parent_tg.ctty_detached
        tg.oom_score_adj = parent_tg.oom_score_adj
        tg.oom_score_adj_min = parent_tg.oom_score_adj_min
        if mm is not t.mm:
            # The copy belongs to the new process and obeys its limits.
            mm.rlimits = tg.limits
    child = Task(kernel, tid, tg, mm, fd_table, fs, t.creds, state, t.name)
    # The signal mask, seccomp filters and alternate signal stack.
    inherit_for_clone(t, child, flags)
    child.personality = t.personality
    child.sched = t.sched.fork()
    child.mempolicy = t.mempolicy
    child.uts_ns = uts_of(t).clone() if flags & SC.CLONE_NEWUTS else t.uts_ns
    child.ipc_ns = IPCNamespace(kernel.mf) if flags & SC.CLONE_NEWIPC else t.ipc_ns
    if child.ipc_ns is not None:
        child.ipc_ns.inc_users()
    if flags & SC.CLONE_CHILD_CLEARTID:
        child.clear_child_tid = opts.child_tid
    if flags & SC.CLONE_CHILD_SETTID:
        # Linux writes it from the child as it first runs; errors are
        # ignored.
        with contextlib.suppress(SyscallError):
            mm.write_i32(opts.child_tid, tid)

    pidfd = -1
    try:
        if flags & SC.CLONE_PIDFD:
            # A new thread gets a thread pidfd (as PIDFD_THREAD).
            pidfd_file = PidFD(tg, child if flags & SC.CLONE_THREAD else None, 0)
            try:
                pidfd = t.fd_table.new_fd(
                    pidfd_file, cloexec=True, limit=nofile_limit(t)
                )
            except SyscallError:
                pidfd_file.dec_ref()
                raise
            t.mm.write_i32(opts.pidfd, pidfd)
        _commit(t, child, tg, flags)
    except BaseException:
        if pidfd >= 0:
            t.fd_table.close(pidfd)
        with kernel.tasks.mu:
            kernel.tasks.release_id(tid)
        child.close()
        undo_copies()
        if child.ipc_ns is not None:
            child.ipc_ns.dec_users()
        raise

    if flags & SC.CLONE_PARENT_SETTID:
        with contextlib.suppress(SyscallError):
            t.mm.write_i32(opts.parent_tid, tid)

    if flags & SC.CLONE_VFORK:
        vd = VforkDone(t)
        child.vfork_done = vd
    # A tracer that asked for this kind of child traces it from its start
    # (copy_process and ptrace_init_task); CLONE_UNTRACED opts out.
    # CLONE_PTRACE attaches the child without reporting an event.
    event = 0
    if t.ptrace is not None and not flags & SC.CLONE_UNTRACED:
        if flags & SC.CLONE_VFORK:
            event = PT.PTRACE_EVENT_VFORK
        elif opts.exit_signal != S.SIGCHLD:
            event = PT.PTRACE_EVENT_CLONE
        else:
            event = PT.PTRACE_EVENT_FORK
        if not ptrace.clone_event(t, child, event, bool(flags & SC.CLONE_PTRACE)):
            event = 0
    log.debug("clone: tid=%d created tid=%d flags=%#x", t.tid, tid, flags)
    kernel.start_task(child)
    if event:
        ptrace.event_stop(t, event, tid)

    if flags & SC.CLONE_VFORK:
        # Killable only, as in Linux: other signals wait until the child
        # has let go of the parent's memory.
        block_killable(t, lambda: vd.done)
        ps = t.ptrace
        if ps is not None and ps.options & PT.PTRACE_O_TRACEVFORKDONE:
            ptrace.event_stop(t, PT.PTRACE_EVENT_VFORK_DONE, tid)
    return tid


def _commit(t: Task, child: Task, tg: ThreadGroup, flags: int) -> None:
    """Makes child visible: in the task set, its process and the tree."""
    kernel = t.kernel
    with kernel.tasks.mu, t.tg.signal_handlers.mu:
        ptg = t.tg
        if t.exiting or ptg.exiting or ptg.exec_task not in (None, t):
            # The caller is dying (a group exit or another thread's execve):
            # it never returns to the application, so the error is moot.
            raise SyscallError(errno.ERESTARTNOINTR)
        limit = kernel.config.pids_limit
        if limit and len(kernel.tasks.tasks) >= limit:
            # As the pids controller refuses a fork past pids.max.
            raise SyscallError(errno.EAGAIN)
        kernel.tasks.tasks[child.tid] = child
        tg.tasks.append(child)
        if flags & SC.CLONE_THREAD:
            # A new thread of a stopped (or stopping) process stops too.
            join_group_stop_locked(child)
        else:
            tg.leader = child
            kernel.tasks.thread_groups[tg.tgid] = tg
            assert tg.parent is not None
            tg.parent.children.append(tg)
            assert ptg.process_group is not None
            join_process_group_locked(kernel.tasks, tg, ptg.process_group)
        if flags & SC.CLONE_VM:
            child.mm.users += 1
        if flags & SC.CLONE_FILES:
            child.fd_table.users += 1
        if flags & SC.CLONE_FS:
            with child.fs.mu:
                child.fs.users += 1
