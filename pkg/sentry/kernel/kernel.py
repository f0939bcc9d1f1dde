"""Kernel: the sandbox-wide state of the sentry.

The Kernel owns the platform, the MemoryFile, the task set, the syscall table
and everything processes share. It creates the container's first process and
reports its exit status; when that process exits, every other task dies, as
when a PID namespace's init exits.
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import os
import select
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pkg.abi.linux import elf
from pkg.abi.linux import signal as S
from pkg.platform.platform import Platform
from pkg.sentry.kernel.credentials import Credentials, root_credentials
from pkg.sentry.kernel.fd_table import FDTable
from pkg.sentry.kernel.fs_context import FSContext
from pkg.sentry.kernel.futex import FutexManager
from pkg.sentry.kernel.ipc.namespace import IPCNamespace
from pkg.sentry.kernel.limits import LimitSet
from pkg.sentry.kernel.sched_stats import KernelStats
from pkg.sentry.kernel.sessions import new_session_locked
from pkg.sentry.kernel.signals import SignalHandlers, SigpendingAccount
from pkg.sentry.kernel.task import Task
from pkg.sentry.kernel.task_exec import follow_scripts
from pkg.sentry.kernel.task_exit import reap_locked, wait_status_signaled
from pkg.sentry.kernel.task_run import run
from pkg.sentry.kernel.task_set import TaskSet
from pkg.sentry.kernel.task_signals import group_exit
from pkg.sentry.kernel.task_syscall import dispatch, dispatch_traced
from pkg.sentry.kernel.thread_group import ThreadGroup
from pkg.sentry.kernel.timers import CPUTimerTicker, TimerQueue
from pkg.sentry.kernel.uts_namespace import UTSNamespace
from pkg.sentry.loader import vdso_mapping
from pkg.sentry.loader.elf import ExecFile
from pkg.sentry.loader.loader import LoadArgs, load
from pkg.sentry.loader.vdso_mapping import VDSO
from pkg.sentry.mm.memory_manager import MemoryManager
from pkg.sentry.pgalloc.memory_file import MemoryFile
from pkg.sentry.strace.strace import Strace
from pkg.sentry.syscalls.syscall import Syscall
from pkg.sentry.time.vdso_clock import VdsoClock
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.nsfs import INIT_UTS_NS_INO
from pkg.sentry.vfs.vfs import VirtualFilesystem

log = logging.getLogger(__name__)

# The sandbox's exit status when the sentry itself fails.
PANIC_EXIT_STATUS = 128 + S.SIGABRT
# How long a panic waits for the killed tasks to go before the sandbox
# stops anyway: a task stuck in the host (or the one that panicked, if its
# thread cannot unwind) must not keep a broken sandbox alive.
_PANIC_GRACE_S = 5.0


@dataclass(slots=True)
class KernelConfig:
    """KernelConfig is what the sandbox's configuration tells the kernel."""

    hostname: str = "localhost"
    domainname: str = "(none)"
    strace: bool = False
    # Syscall names to trace; empty means all.
    strace_syscalls: frozenset[str] = frozenset()
    strace_log_size: int = 1024
    num_cpus: int = 0
    # Map a vDSO into every process (pkg/sentry/loader/vdso_mapping.py).
    # Off by default so that kernels made by unit tests own no pages and run
    # no clock thread.
    vdso: bool = False
    # The most tasks (threads) the kernel holds at once, as the pids cgroup
    # controller's pids.max bounds a container (unlike it, zombies are not
    # counted); 0: no limit. clone fails with EAGAIN at the limit.
    pids_limit: int = 0
    # AF_INET and AF_INET6 sockets are host sockets (--network=host,
    # pkg/sentry/socket/hostinet.py) instead of the loopback-only stack.
    host_network: bool = False
    # With host_network, the host's interfaces, addresses and routes as
    # RTM_NEWLINK, RTM_NEWADDR and RTM_NEWROUTE payloads
    # (pkg/sentry/socket/hostifaces.py), for the sandbox's netlink sockets.
    host_links: tuple[bytes, ...] = ()
    host_addrs: tuple[bytes, ...] = ()
    host_routes: tuple[bytes, ...] = ()
    # The sandbox's total memory in bytes (the container's memory limit),
    # what /proc/meminfo and sysinfo(2) show; 0 for the host's memory.
    total_memory: int = 0
    extra: dict[str, object] = field(default_factory=dict)


def read_host_auxv() -> dict[int, int]:
    """Returns the host auxv entries applications should see (CPU features
    and signal stack size), read from the sentry's own auxv."""
    wanted = {elf.AT_HWCAP, elf.AT_HWCAP2, elf.AT_MINSIGSTKSZ}
    out = {}
    try:
        with open("/proc/self/auxv", "rb") as f:
            data = f.read()
    except OSError:
        return out
    for i in range(0, len(data) - 15, 16):
        key, value = struct.unpack_from("<QQ", data, i)
        if key in wanted:
            out[key] = value
    return out


class Kernel:
    """Kernel is the root of the sentry's state."""

    def __init__(
        self,
        platform: Platform,
        mf: MemoryFile,
        config: KernelConfig,
        syscall_table: list[Syscall | None],
    ) -> None:
        self.platform = platform
        self.mf = mf
        self.config = config
        self.tasks = TaskSet()
        # Load averages, fork and context switch counts (/proc).
        self.stats = KernelStats()
        self.futexes = FutexManager()
        # The virtual filesystem; runsc/boot/vfs.py mounts the root.
        self.vfs = VirtualFilesystem()
        # Queued signals per user, for RLIMIT_SIGPENDING.
        self.sigpending = SigpendingAccount()
        # The timer thread and the CPU-time timer tick (timers.py).
        self.timer_queue = TimerQueue(self.panic)
        self.cpu_timers = CPUTimerTicker(self.timer_queue)
        self.syscall_table = syscall_table
        self.strace = Strace(config.strace_syscalls, config.strace_log_size)
        self.dispatch = dispatch_traced if config.strace else dispatch
        # The initial UTS namespace; tasks see theirs (Task.uts_ns).
        self.root_uts = UTSNamespace(
            config.hostname, config.domainname, INIT_UTS_NS_INO
        )
        # System V IPC and POSIX message queues of the initial IPC
        # namespace; tasks see theirs (Task.ipc_ns).
        self.ipc = IPCNamespace(mf, initial=True)
        self.host_auxv = read_host_auxv()
        self.boot_monotonic = time.monotonic_ns()
        # The sandbox's CPUs, numbered from 0 (sched_getaffinity, getcpu).
        self.num_cpus = config.num_cpus or len(os.sched_getaffinity(0))
        # The sandbox's memory in bytes: the host's, or the container's
        # limit when it is less (as gVisor's --total-memory).
        host_mem = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        self.total_memory = host_mem
        if 0 < config.total_memory < host_mem:
            self.total_memory = config.total_memory
        # The vDSO and the clock in its vvar page, shared by all processes.
        self.vdso: VDSO | None = None
        self.vdso_clock: VdsoClock | None = None
        if config.vdso and vdso_mapping.IMAGE is not None:
            self.vdso = VDSO(mf, vdso_mapping.IMAGE)
            self.vdso_clock = VdsoClock(mf, self.vdso.vvar_offset, self.num_cpus)
            self.vdso_clock.start()
        self.init_tg: ThreadGroup | None = None
        # kernel.yama.ptrace_scope (ptrace.py): 1, attach to descendants
        # only, by default as in gVisor and many distributions.
        self.yama_ptrace_scope = 1
        # Set once the init process has exited and every task is gone.
        self.done = threading.Event()
        self.exit_status: int | None = None
        self.panicked = False
        self._mu = threading.Lock()
        # Called with each process that exits with no parent to tell (those
        # the control server created), after it became a zombie.
        self.orphan_exit_callback: Callable[[ThreadGroup], None] | None = None
        # Set while the sandbox is paused: tasks wait in their run loop.
        self.paused = False
        # /proc/sys/dev/tty/legacy_tiocsti: TIOCSTI without CAP_SYS_ADMIN
        # is allowed (on the terminal one controls), as Linux built with
        # CONFIG_LEGACY_TIOCSTI, the hosts this project targets.
        self.tty_legacy_tiocsti = True
        # The terminal the console is redirected to (TIOCCONS), weakly.
        self.console_tty: Callable[[], object | None] | None = None

    # Processes.

    def create_init_process(
        self,
        exec_file: ExecFile,
        argv: list[bytes],
        envv: list[bytes],
        filename: bytes,
        fd_table: FDTable,
        root: VirtualDentry,
        cwd: VirtualDentry,
        creds: Credentials | None = None,
        limits: LimitSet | None = None,
        open_interpreter: Callable[[bytes], ExecFile] | None = None,
    ) -> Task:
        """Loads the container's first process; start() runs it.

        open_interpreter opens the interpreters of `#!` scripts and the ELF
        interpreter (PT_INTERP) by path; the caller owns what it opens.
        """
        creds = creds or root_credentials()
        limits = limits or LimitSet()
        if open_interpreter is not None:
            exec_file, argv = follow_scripts(
                exec_file, filename, argv, open_interpreter
            )
        with self.tasks.mu:
            tid = self.tasks.allocate_id()
        mm = MemoryManager(self.platform, self.mf)
        mm.rlimits = limits
        try:
            result = load(
                LoadArgs(
                    mm=mm,
                    file=exec_file,
                    argv=argv,
                    envv=envv,
                    filename=filename,
                    uid=creds.ruid,
                    euid=creds.euid,
                    gid=creds.rgid,
                    egid=creds.egid,
                    host_auxv=self.host_auxv,
                    stack_size=min(limits.soft(3), 1 << 30),
                    open_interpreter=open_interpreter,
                    vdso=self.vdso,
                )
            )
        except BaseException:
            mm.release()
            with self.tasks.mu:
                self.tasks.release_id(tid)
            raise
        # /proc/[pid]/exe: the file's VirtualDentry when it is a VFS file.
        opened = getattr(exec_file, "file", None)
        mm.executable = getattr(opened, "vd", None)
        tg = ThreadGroup(self, tid, SignalHandlers(), limits, parent=None)
        state = self.platform.new_state()
        state.init_user(result.entry, result.stack_pointer)
        name = filename.rsplit(b"/", 1)[-1]
        t = Task(self, tid, tg, mm, fd_table, FSContext(root, cwd), creds, state, name)
        tg.leader = t
        tg.tasks.append(t)
        with self.tasks.mu:
            self.tasks.tasks[tid] = t
            self.tasks.thread_groups[tid] = tg
            self.stats.forks += 1
            new_session_locked(self.tasks, tg)
            if self.init_tg is None:
                self.init_tg = tg
        return t

    def start_task(self, t: Task) -> None:
        """Starts the host thread that runs t.

        A bare thread, not a threading.Thread: Thread.start waits until the
        new thread has run, a hand-off between two threads and the GIL on
        the path of every clone (docs/performance.md), and a task thread is
        never joined. It is a daemon thread as far as the interpreter is
        concerned.
        """
        self.tasks.empty.clear()
        self.stats.start_sampling(self)
        _thread.start_new_thread(run, (t,))

    def reap(self, tg: ThreadGroup) -> None:
        """Forgets a zombie process once its parent has collected it."""
        with self.tasks.mu:
            reap_locked(tg)

    def all_cpus_mask(self) -> int:
        """Returns the CPU mask with every sandbox CPU set."""
        return (1 << self.num_cpus) - 1

    def futex_wake(self, t: Task, addr: int, n: int) -> int:
        """Wakes up to n futex waiters on addr as t sees it (a shared key, as
        clear_child_tid wakes)."""
        return self.futexes.wake(t, addr, False, n)

    # Lifecycle.

    def on_init_exit(self, status: int) -> None:
        """Records the container's exit status and kills every other task."""
        with self._mu:
            if self.exit_status is None:
                self.exit_status = status
        log.info("kernel: init exited with wait status %#x", status)
        self.kill_all()
        threading.Thread(target=self._finish, name="kernel-finish", daemon=True).start()

    def on_orphan_exit(self, tg: ThreadGroup) -> None:
        """Reports the exit of a process that has no parent in the sandbox
        (one that runsc exec started)."""
        callback = self.orphan_exit_callback
        if callback is not None:
            callback(tg)

    def pause(self) -> None:
        """Stops every task from running application code until resume(),
        as the cgroup freezer does for runc's `pause`. A task blocked in a
        system call is interrupted and restarts the call on resume."""
        self.paused = True
        for t in self.tasks.live_tasks():
            t.interrupt()

    def resume(self) -> None:
        """Lets the tasks stopped by pause() run again."""
        self.paused = False
        for t in self.tasks.live_tasks():
            t.wake()

    def pause_gate(self, t: Task) -> None:
        """Holds t, on its own thread between run states, while the sandbox
        is paused and t is not exiting."""
        while self.paused and not (t.exiting or t.tg.exiting):
            # Not runnable meanwhile (the load average).
            t.cpu.waiting = True
            try:
                select.select([t.wake_fd], [], [])
            finally:
                t.cpu.waiting = False
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(t.wake_fd)

    def _finish(self, grace: float | None = None) -> None:
        if not self.tasks.empty.wait(grace):
            log.error(
                "kernel: %d task(s) left %.0f s after the panic; stopping anyway",
                len(self.tasks.live_tasks()),
                grace,
            )
        self.stats.stop()
        self.timer_queue.close()
        self.done.set()

    def kill_all(self) -> None:
        """Makes every task exit (SIGKILL semantics)."""
        for t in self.tasks.live_tasks():
            group_exit(t, wait_status_signaled(S.SIGKILL))
            t.interrupt()

    def panic(self, reason: str) -> None:
        """Stops the sandbox after a sentry bug. The traceback has already
        been logged by the caller."""
        log.error("kernel: panic: %s; stopping the sandbox", reason)
        with self._mu:
            self.panicked = True
            if self.exit_status is None:
                self.exit_status = PANIC_EXIT_STATUS << 8
        self.kill_all()
        try:
            threading.Thread(
                target=self._finish,
                args=(_PANIC_GRACE_S,),
                name="kernel-finish",
                daemon=True,
            ).start()
        except RuntimeError:
            # The host has no thread to give (which may be what went
            # wrong): finish on this one.
            self._finish(_PANIC_GRACE_S)

    def wait(self, timeout: float | None = None) -> int | None:
        """Waits for the sandbox to finish; returns init's wait status."""
        if not self.done.wait(timeout):
            return None
        return self.exit_status

    def free_memory(self) -> int:
        """Returns the bytes of total_memory that the MemoryFile does not
        hold (MemFree)."""
        return max(0, self.total_memory - self.mf.committed)

    def uptime_ns(self) -> int:
        """Nanoseconds since the kernel started (CLOCK_BOOTTIME's origin)."""
        return time.monotonic_ns() - self.boot_monotonic
