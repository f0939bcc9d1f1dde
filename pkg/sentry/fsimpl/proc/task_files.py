"""The files of /proc/[pid] and /proc/[pid]/task/[tid] (fs/proc/base.c,
fs/proc/array.c).

A process directory and a thread directory hold the same files; those that
differ per thread (stat, status, comm, ...) read the thread's state in a
thread directory and the leader's or the whole process's in a process
directory, as Linux does. Everything is rendered from the sentry's own
state; nothing is read from the host.

Ownership follows Linux's task_dump_owner: a dumpable process's files
belong to its effective uid and gid, a non-dumpable one's to root.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import limits as L
from pkg.abi.linux import signal as SIG
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.kernfs.kernfs import (
    DataInode,
    Inode,
    StaticDir,
    SymlinkInode,
)
from pkg.sentry.fsimpl.proc.mounts import render_mounts
from pkg.sentry.fsimpl.proc.task_limits import (
    limits as _limits,
)
from pkg.sentry.fsimpl.proc.task_limits import (
    oom_adj as _oom_adj,
)
from pkg.sentry.fsimpl.proc.task_limits import (
    oom_score_adj as _oom_score_adj,
)
from pkg.sentry.fsimpl.proc.task_limits import (
    write_oom_score_adj as _write_oom_score_adj,
)
from pkg.sentry.kernel.cputime import task_cputime, thread_group_cputime
from pkg.sentry.kernel.credentials import (
    CAP_SYS_PTRACE,
    SUID_DUMP_USER,
)
from pkg.sentry.kernel.limits import INFINITY
from pkg.sentry.kernel.sched_stats import TaskIO
from pkg.sentry.kernel.sessions import controlling_tty_locked
from pkg.sentry.kernel.task_sched import ALL_CPUS
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.file_description import FileDescription

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup

PAGE_SIZE = 4096
# USER_HZ: clock ticks per second in times reported to applications.
CLK_TCK = 100
_NS_PER_TICK = 1_000_000_000 // CLK_TCK
# Linux's CAP_LAST_CAP (CAP_CHECKPOINT_RESTORE).
CAP_LAST_CAP = 40
_CAP_MASK = (1 << (CAP_LAST_CAP + 1)) - 1


def ticks(ns: int) -> int:
    """Converts nanoseconds to clock ticks."""
    return ns // _NS_PER_TICK


def task_state(t: Task, reader: Task | None) -> tuple[str, str]:
    """Returns the state letter and name of /proc/pid/stat and status."""
    tg = t.tg
    if tg.zombie:
        return "Z", "zombie"
    ps = t.ptrace
    if ps is not None and ps.stop is not None and not ps.stop.group:
        return "t", "tracing stop"
    if t.stopped or tg.stopped or (ps is not None and ps.stop is not None):
        return "T", "stopped"
    if t is reader or t.cpu.run[1]:
        return "R", "running"
    return "S", "sleeping"


def leader_or_any(tg: ThreadGroup) -> Task | None:
    """Returns the process's leader, or any live thread of it."""
    if tg.leader is not None:
        return tg.leader
    tasks = list(tg.tasks)
    return tasks[0] if tasks else None


class TaskRef:
    """TaskRef names what a /proc directory describes: a process (task
    None: the leader stands for it) or one of its threads."""

    __slots__ = ("task", "tg")

    def __init__(self, tg: ThreadGroup, task: Task | None) -> None:
        self.tg = tg
        self.task = task

    def alive(self) -> bool:
        """Reports whether the process (or thread) still has a /proc
        entry: until it is reaped (a thread: until it exits)."""
        if self.tg.reaped:
            return False
        if self.task is not None:
            return self.task.kernel.tasks.find_task(self.task.tid) is self.task
        return True

    def thread(self) -> Task:
        """Returns the thread to describe (the leader for a process).

        Raises:
            SyscallError: ESRCH if it is gone.
        """
        t = self.task if self.task is not None else leader_or_any(self.tg)
        if t is None or not self.alive():
            raise SyscallError(errno.ESRCH)
        return t

    def owner(self) -> tuple[int, int]:
        """Returns the uid and gid the files belong to (task_dump_owner)."""
        t = self.task if self.task is not None else leader_or_any(self.tg)
        if t is None:
            return 0, 0
        if self.tg.dumpable != SUID_DUMP_USER:
            return 0, 0
        c = t.creds
        return c.euid, c.egid


def may_access(creds: Credentials, ref: TaskRef) -> bool:
    """Reports whether creds may inspect the task's memory and links
    (ptrace_may_access in PTRACE_MODE_READ_FSCREDS, without the LSMs): the
    same user with a dumpable process, or CAP_SYS_PTRACE."""
    if creds.has_capability(CAP_SYS_PTRACE):
        return True
    t = ref.task if ref.task is not None else leader_or_any(ref.tg)
    if t is None:
        return False
    c = t.creds
    same = (
        creds.fsuid == c.euid == c.ruid == c.suid
        and creds.fsgid == c.egid == c.rgid == c.sgid
    )
    return same and ref.tg.dumpable == SUID_DUMP_USER


# A file's renderer (TaskRef, reading task) -> contents, and a writable
# file's handler (TaskRef, writing task, data) -> bytes consumed.
Renderer = Callable[["TaskRef", "Task | None"], bytes]
Writer = Callable[["TaskRef", "Task", bytes], int]


class TaskInode(Inode):
    """TaskInode mixes task ownership into a /proc/pid file."""

    __slots__ = ()
    ref: TaskRef

    def owner(self) -> tuple[int, int]:
        return self.ref.owner()

    def valid(self) -> bool:
        return self.ref.alive()


class TaskData(TaskInode, DataInode):
    """TaskData is a /proc/pid file rendered by a function of the TaskRef
    and the reading task."""

    __slots__ = ("fn", "ref", "writer")

    def __init__(
        self,
        ref: TaskRef,
        fn: Renderer,
        perm: int = 0o444,
        writer: Writer | None = None,
    ) -> None:
        DataInode.__init__(self, perm)
        self.ref = ref
        self.fn = fn
        self.writer = writer

    def generate(self, t: Task | None) -> bytes:
        return self.fn(self.ref, t)

    def write(self, t: Task, data: bytes, offset: int) -> int:
        if self.writer is None:
            # TODO(#5): the writable files that keep nothing yet
            # (coredump_filter, loginuid, setgroups...).
            raise SyscallError(errno.EINVAL)
        return self.writer(self.ref, t, data)


class TaskDir(TaskInode, StaticDir):
    """TaskDir is a directory belonging to a task (fd/, ns/, task/...)."""

    __slots__ = ("ref",)

    def __init__(
        self, ref: TaskRef, children: dict[bytes, Inode], perm: int = 0o555
    ) -> None:
        StaticDir.__init__(self, children, perm)
        self.ref = ref


class TaskLink(TaskInode, SymlinkInode):
    """TaskLink is a magic link of a task: cwd, root, exe."""

    __slots__ = ("fn", "ref")

    def __init__(
        self, ref: TaskRef, fn: Callable[[Task], VirtualDentry | None]
    ) -> None:
        SymlinkInode.__init__(self)
        self.ref = ref
        self.fn = fn

    def _target(self) -> VirtualDentry:
        vd = self.fn(self.ref.thread())
        if vd is None:
            raise SyscallError(errno.ENOENT)
        return vd

    def readlink(self, t: Task | None) -> bytes:
        vd = self._target()
        root = t.fs.root if t is not None else None
        return vd.mount.vfs.path_for_display(vd, root)

    def jump(self, t: Task | None) -> VirtualDentry | FileDescription | None:
        return self._target()

    def check_follow(self, creds: Credentials) -> None:
        if not may_access(creds, self.ref):
            raise SyscallError(errno.EACCES)


# Renderers. Each takes the TaskRef and the reading task.


def _comm(ref: TaskRef, t: Task | None) -> bytes:
    return ref.thread().name + b"\n"


def _write_comm(ref: TaskRef, t: Task, data: bytes) -> int:
    target = ref.thread()
    # Only a thread of the same process may rename (comm_write).
    if target.tg is not t.tg:
        raise SyscallError(errno.EINVAL)
    # Bytes as written, up to a newline or NUL (set_task_comm keeps any).
    target.name = data.split(b"\n", 1)[0].split(b"\0", 1)[0][:15]
    return len(data)


def _cmdline(ref: TaskRef, t: Task | None) -> bytes:
    task = ref.thread()
    mm = task.mm
    if mm is None or mm.arg_end <= mm.arg_start:
        return b""
    try:
        data = mm.copy_in_partial(mm.arg_start, mm.arg_end - mm.arg_start)
    except SyscallError:
        return b""
    # A process that overwrote its argument area's final NUL with text
    # continuing into the environment shows the text up to a NUL there
    # (get_mm_cmdline's setproctitle case).
    if data and data[-1] != 0 and mm.env_end > mm.env_start:
        more = mm.copy_in_partial(mm.env_start, mm.env_end - mm.env_start)
        data += more.split(b"\0", 1)[0]
    return data


def _environ(ref: TaskRef, t: Task | None) -> bytes:
    task = ref.thread()
    mm = task.mm
    if mm is None or mm.env_end <= mm.env_start:
        return b""
    try:
        return mm.copy_in_partial(mm.env_start, mm.env_end - mm.env_start)
    except SyscallError:
        return b""


def _auxv(ref: TaskRef, t: Task | None) -> bytes:
    mm = ref.thread().mm
    out = bytearray()
    for key, value in [*list(mm.auxv), (0, 0)]:
        out += key.to_bytes(8, "little") + value.to_bytes(8, "little")
    return bytes(out)


def _maps(ref: TaskRef, t: Task | None) -> bytes:
    return ref.thread().mm.maps_text()


def _smaps(ref: TaskRef, t: Task | None) -> bytes:
    return ref.thread().mm.smaps_text()


def _statm(ref: TaskRef, t: Task | None) -> bytes:
    mm = ref.thread().mm
    vm = mm.vm_status()
    size = vm["VmSize"] * 1024 // PAGE_SIZE
    resident = vm["VmRSS"] * 1024 // PAGE_SIZE
    shared = (vm["RssFile"] + vm["RssShmem"]) * 1024 // PAGE_SIZE
    text = vm["VmExe"] * 1024 // PAGE_SIZE
    data = (vm["VmData"] + vm["VmStk"]) * 1024 // PAGE_SIZE
    return f"{size} {resident} {shared} {text} 0 {data} 0\n".encode()


def _stat(ref: TaskRef, t: Task | None) -> bytes:
    task = ref.thread()
    tg = ref.tg
    kernel = task.kernel
    mm = task.mm
    state, _ = task_state(task, t)
    if ref.task is None:
        user, system = thread_group_cputime(tg)
    else:
        user, system = task_cputime(task)
    cu = tg.child_usage
    ppid = tg.parent.tgid if tg.parent is not None else 0
    leader = tg.leader if tg.leader is not None else task
    start = ticks(max(0, leader.start_ns - kernel.boot_monotonic))
    vm = mm.total_vm if mm is not None else 0
    rss = mm.resident_bytes() // PAGE_SIZE if mm is not None else 0
    rss_lim = tg.limits.soft(L.RLIMIT_RSS)
    nice = task.sched.nice
    mask = task.signal_mask
    pending = task.pending.mask | tg.pending.mask
    ignored, caught = _signal_sets(tg)
    tty_nr, tpgid = _terminal(task)
    fields = [
        task.tid if ref.task is not None else tg.tgid,
        b"(" + task.name + b")",
        state,
        ppid,
        tg.pgid,
        tg.sid,
        tty_nr,
        tpgid,
        0x400000,  # flags: PF_RANDOMIZE
        0,  # minflt
        0,  # cminflt
        0,  # majflt
        0,  # cmajflt
        ticks(user),
        ticks(system),
        ticks(cu.utime_ns),
        ticks(cu.stime_ns),
        20 + nice,  # priority
        nice,
        len(tg.tasks),
        0,  # itrealvalue
        start,
        vm,
        rss,
        rss_lim if rss_lim != INFINITY else (1 << 64) - 1,
        mm.start_code if mm is not None else 0,
        mm.end_code if mm is not None else 0,
        mm.start_stack if mm is not None else 0,
        0,  # kstkesp
        0,  # kstkeip
        pending & 0xFFFFFFFF_FFFFFFFF,
        mask,
        ignored,
        caught,
        0,  # wchan
        0,  # nswap
        0,  # cnswap
        tg.exit_signal,
        0,  # processor
        task.sched.priority,
        task.sched.policy,
        0,  # delayacct_blkio_ticks
        0,  # guest_time
        0,  # cguest_time
        mm.start_data if mm is not None else 0,
        mm.end_data if mm is not None else 0,
        mm.brk_start if mm is not None else 0,
        mm.arg_start if mm is not None else 0,
        mm.arg_end if mm is not None else 0,
        mm.env_start if mm is not None else 0,
        mm.env_end if mm is not None else 0,
        tg.exit_status if tg.zombie else 0,
    ]
    return (
        b" ".join(f if isinstance(f, bytes) else str(f).encode() for f in fields)
        + b"\n"
    )


def _terminal(task: Task) -> tuple[int, int]:
    """Returns (tty_nr, tpgid): the controlling terminal's device number
    (0 for the host's, which has none in the sandbox) and its foreground
    group (-1 without a terminal)."""
    with task.kernel.tasks.mu:
        pg = task.tg.process_group
        session = pg.session if pg is not None else None
        if session is None or controlling_tty_locked(task.tg) is None:
            return 0, -1
        fg = session.foreground
        rdev = getattr(session.tty, "rdev", None)
        return (S.make_dev(*rdev()) if rdev else 0), (fg.pgid if fg else -1)


def _signal_sets(tg: ThreadGroup) -> tuple[int, int]:
    """Returns the masks of ignored and caught signals."""
    ignored = caught = 0
    actions = tg.signal_handlers.actions
    for signo in range(1, SIG.NSIG + 1):
        handler = actions[signo].handler
        if handler == SIG.SIG_IGN:
            ignored |= 1 << (signo - 1)
        elif handler != SIG.SIG_DFL:
            caught |= 1 << (signo - 1)
    return ignored, caught


def _cpu_list(mask: int) -> str:
    """Returns a CPU mask as a list of ranges ("0-3,5")."""
    out = []
    cpu = 0
    while mask >> cpu:
        if mask >> cpu & 1:
            end = cpu
            while mask >> (end + 1) & 1:
                end += 1
            out.append(str(cpu) if end == cpu else f"{cpu}-{end}")
            cpu = end + 1
        else:
            cpu += 1
    return ",".join(out)


def _cpu_hex(mask: int, ncpus: int) -> str:
    """Returns a CPU mask in the comma-separated 32-bit words of
    Cpus_allowed."""
    words = max(1, (ncpus + 31) // 32)
    parts = [f"{(mask >> (32 * i)) & 0xFFFFFFFF:08x}" for i in range(words)]
    text = ",".join(reversed(parts))
    return text.lstrip("0") or "0" if words == 1 else text


def _status(ref: TaskRef, t: Task | None) -> bytes:
    task = ref.thread()
    tg = ref.tg
    kernel = task.kernel
    c = task.creds
    state, state_name = task_state(task, t)
    ppid = tg.parent.tgid if tg.parent is not None else 0
    tps = task.ptrace
    tracer_pid = tps.tracer.pid if tps is not None else 0
    pid = task.tid if ref.task is not None else tg.tgid
    mask = task.sched.cpu_mask & kernel.all_cpus_mask()
    if task.sched.cpu_mask == ALL_CPUS:
        mask = kernel.all_cpus_mask()
    ignored, caught = _signal_sets(tg)
    fd_size = 64
    fds = task.fd_table.fds() if task.fd_table is not None else []
    while fds and fd_size <= max(fds):
        fd_size *= 2
    lines = [
        "Name:\t" + _escape_comm(task.name),
        f"Umask:\t{task.fs.umask:04o}",
        f"State:\t{state} ({state_name})",
        f"Tgid:\t{tg.tgid}",
        "Ngid:\t0",
        f"Pid:\t{pid}",
        f"PPid:\t{ppid}",
        f"TracerPid:\t{tracer_pid}",
        f"Uid:\t{c.ruid}\t{c.euid}\t{c.suid}\t{c.fsuid}",
        f"Gid:\t{c.rgid}\t{c.egid}\t{c.sgid}\t{c.fsgid}",
        f"FDSize:\t{fd_size}",
        "Groups:\t" + "".join(f"{g} " for g in c.groups),
        f"NStgid:\t{tg.tgid}",
        f"NSpid:\t{pid}",
        f"NSpgid:\t{tg.pgid}",
        f"NSsid:\t{tg.sid}",
    ]
    if task.mm is not None and not tg.zombie:
        for key, value in task.mm.vm_status().items():
            lines.append(f"{key}:\t{value:>8} kB")
    pending = task.pending.mask
    shared = tg.pending.mask
    lines += [
        f"Threads:\t{len(tg.tasks)}",
        f"SigQ:\t{kernel.sigpending.count(c.ruid)}/"
        f"{tg.limits.soft(L.RLIMIT_SIGPENDING)}",
        f"SigPnd:\t{pending:016x}",
        f"ShdPnd:\t{shared:016x}",
        f"SigBlk:\t{task.signal_mask:016x}",
        f"SigIgn:\t{ignored:016x}",
        f"SigCgt:\t{caught:016x}",
        f"CapInh:\t{c.inheritable & _CAP_MASK:016x}",
        f"CapPrm:\t{c.permitted & _CAP_MASK:016x}",
        f"CapEff:\t{c.effective & _CAP_MASK:016x}",
        f"CapBnd:\t{c.bounding & _CAP_MASK:016x}",
        f"CapAmb:\t{c.ambient & _CAP_MASK:016x}",
        f"NoNewPrivs:\t{int(c.no_new_privs)}",
        f"Seccomp:\t{task.seccomp_mode}",
        f"Seccomp_filters:\t{_filters(task)}",
        "Speculation_Store_Bypass:\tthread vulnerable",
        "SpeculationIndirectBranch:\tconditional enabled",
        f"Cpus_allowed:\t{_cpu_hex(mask, kernel.num_cpus)}",
        f"Cpus_allowed_list:\t{_cpu_list(mask)}",
        "Mems_allowed:\t00000001",
        "Mems_allowed_list:\t0",
        f"voluntary_ctxt_switches:\t{task.cpu.nvcsw}",
        f"nonvoluntary_ctxt_switches:\t{task.cpu.nivcsw}",
    ]
    return ("\n".join(lines) + "\n").encode(errors="surrogateescape")


def _escape_comm(name: bytes) -> str:
    """Returns a name as status shows it: newlines and backslashes escaped
    (proc_task_name), other bytes as they are (the str carries bytes that
    are not UTF-8 as surrogates, encoded back by the caller)."""
    text = name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")
    return text.decode(errors="surrogateescape")


def _filters(task: Task) -> int:
    n = 0
    f = task.seccomp_filter
    while f is not None:
        n += 1
        f = f.prev
    return n


def _io(ref: TaskRef, t: Task | None) -> bytes:
    """/proc/pid/io: a thread's counters, or a process's summed over its
    threads, exited ones included (do_io_accounting). Needs the right to
    inspect the task, as reading memory does."""
    if t is not None and not may_access(t.creds, ref):
        raise SyscallError(errno.EACCES)
    io = TaskIO()
    if ref.task is not None:
        io.add(ref.thread().ioac)
    else:
        ref.thread()
        io.add(ref.tg.exited_ioac)
        for task in list(ref.tg.tasks):
            io.add(task.ioac)
    # TODO(#5): the storage-layer counters (read_bytes, write_bytes,
    # cancelled_write_bytes).
    rows = (
        ("rchar", io.rchar),
        ("wchar", io.wchar),
        ("syscr", io.syscr),
        ("syscw", io.syscw),
        ("read_bytes", 0),
        ("write_bytes", 0),
        ("cancelled_write_bytes", 0),
    )
    return "".join(f"{k}: {v}\n" for k, v in rows).encode()


def mountinfo(ref: TaskRef, t: Task | None) -> bytes:
    """Renders /proc/pid/mountinfo."""
    return render_mounts(ref.thread(), True)


def mounts(ref: TaskRef, t: Task | None) -> bytes:
    """Renders /proc/pid/mounts."""
    return render_mounts(ref.thread(), False)


def _cgroup(ref: TaskRef, t: Task | None) -> bytes:
    return b"0::/\n"


def _id_map(ref: TaskRef, t: Task | None) -> bytes:
    # The sandbox has one user namespace: the identity map.
    return b"%10d %10d %10d\n" % (0, 0, 4294967295)


def _setgroups(ref: TaskRef, t: Task | None) -> bytes:
    return b"allow\n"


def _wchan(ref: TaskRef, t: Task | None) -> bytes:
    return b"0"


def _personality(ref: TaskRef, t: Task | None) -> bytes:
    return b"%08x\n" % ref.thread().personality


def _syscall(ref: TaskRef, t: Task | None) -> bytes:
    task = ref.thread()
    if task is t:
        # Reading one's own: the read itself is running.
        return b"running\n"
    # TODO(#5): the arguments, stack and instruction pointers of a blocked
    # system call.
    return b"%d 0x0 0x0 0x0 0x0 0x0 0x0 0x0 0x0\n" % task.last_syscall


def _loginuid(ref: TaskRef, t: Task | None) -> bytes:
    return b"4294967295"


def _sessionid(ref: TaskRef, t: Task | None) -> bytes:
    return b"4294967295"


def _coredump_filter(ref: TaskRef, t: Task | None) -> bytes:
    return b"00000033\n"


def _timerslack(ref: TaskRef, t: Task | None) -> bytes:
    return b"%d\n" % ref.thread().sched.timer_slack_ns


def _sched(ref: TaskRef, t: Task | None) -> bytes:
    task = ref.thread()
    user, system = task_cputime(task)
    name = task.name.decode(errors="surrogateescape")
    head = f"{name} ({task.tid}, #threads: {len(ref.tg.tasks)})"
    rows = [
        ("se.sum_exec_runtime", f"{(user + system) / 1e6:.6f}"),
        ("nr_switches", str(task.cpu.nvcsw + task.cpu.nivcsw)),
        ("nr_voluntary_switches", str(task.cpu.nvcsw)),
        ("nr_involuntary_switches", str(task.cpu.nivcsw)),
        ("policy", str(task.sched.policy)),
        ("prio", str(120 + task.sched.nice)),
    ]
    body = "".join(f"{k:<45}:{v:>21}\n" for k, v in rows)
    return (head + "\n" + "-" * 65 + "\n" + body).encode(errors="surrogateescape")


def _cwd(task: Task) -> VirtualDentry | None:
    return task.fs.cwd if task.fs is not None else None


def _root(task: Task) -> VirtualDentry | None:
    return task.fs.root if task.fs is not None else None


def _exe(task: Task) -> VirtualDentry | None:
    mm = task.mm
    exe = mm.executable if mm is not None else None
    return exe if isinstance(exe, VirtualDentry) else None


def _children(ref: TaskRef, t: Task | None) -> bytes:
    """/proc/pid/task/tid/children: the processes the thread created (or
    adopted), space-separated."""
    task = ref.thread()
    with task.kernel.tasks.mu:
        pids = [c.tgid for c in ref.tg.children if c.real_parent is task]
    return "".join(f"{p} " for p in pids).encode()


def _cpuset(ref: TaskRef, t: Task | None) -> bytes:
    return b"/\n"


def _zero(ref: TaskRef, t: Task | None) -> bytes:
    return b"0\n"


# The generated files of a /proc/pid or /proc/pid/task/tid directory:
# (name, renderer, permissions, writer or None).
DATA_FILES = (
    (b"auxv", _auxv, 0o400, None),
    (b"cgroup", _cgroup, 0o444, None),
    (b"cmdline", _cmdline, 0o444, None),
    (b"comm", _comm, 0o644, _write_comm),
    (b"coredump_filter", _coredump_filter, 0o644, None),
    (b"cpuset", _cpuset, 0o444, None),
    (b"environ", _environ, 0o400, None),
    (b"gid_map", _id_map, 0o444, None),
    (b"io", _io, 0o400, None),
    (b"limits", _limits, 0o444, None),
    (b"loginuid", _loginuid, 0o644, None),
    (b"maps", _maps, 0o444, None),
    (b"mountinfo", mountinfo, 0o444, None),
    (b"mounts", mounts, 0o444, None),
    (b"oom_adj", _oom_adj, 0o644, None),
    (b"oom_score", _zero, 0o444, None),
    (b"oom_score_adj", _oom_score_adj, 0o644, _write_oom_score_adj),
    (b"personality", _personality, 0o400, None),
    (b"sched", _sched, 0o644, None),
    (b"sessionid", _sessionid, 0o444, None),
    (b"setgroups", _setgroups, 0o644, None),
    (b"smaps", _smaps, 0o444, None),
    (b"stat", _stat, 0o444, None),
    (b"statm", _statm, 0o444, None),
    (b"status", _status, 0o444, None),
    (b"syscall", _syscall, 0o400, None),
    (b"uid_map", _id_map, 0o444, None),
    (b"wchan", _wchan, 0o444, None),
)
# Files only a process directory has, and only a thread directory has.
PROCESS_DATA_FILES = ((b"timerslack_ns", _timerslack, 0o666, None),)
THREAD_DATA_FILES = ((b"children", _children, 0o444, None),)
# The magic links: (name, function of the thread returning the target).
LINKS = ((b"cwd", _cwd), (b"exe", _exe), (b"root", _root))
