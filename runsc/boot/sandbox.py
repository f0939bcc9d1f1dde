"""Sandbox: the platform, the kernel, its filesystems, and the container's
processes.

This is the heart of the sandbox process (`runsc boot`): it builds the
sentry's kernel over a platform, mounts the container's root (vfs.py: the
gofer's files under an overlay, rootfs.py), and creates processes in it:
executables are opened through the sentry's own VFS (the interpreter of a
dynamic one too), and standard descriptors are host descriptors that runsc
hands over.
"""

from __future__ import annotations

import logging
import os
import posixpath
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pkg.abi.linux import errno
from pkg.abi.linux import mount as MS
from pkg.abi.linux import seccomp as SC
from pkg.abi.linux import signal as S
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.platform.ptrace.ptrace import PtracePlatform
from pkg.sentry.fsimpl.devpts.host_relay import HostRelay
from pkg.sentry.fsimpl.host.host_file import HostFile
from pkg.sentry.fsimpl.host.tty import host_tty
from pkg.sentry.kernel.credentials import Credentials, root_credentials
from pkg.sentry.kernel.fd_table import FDTable
from pkg.sentry.kernel.kernel import Kernel, KernelConfig
from pkg.sentry.kernel.limits import LimitSet
from pkg.sentry.kernel.seccomp import (
    SeccompFilter,
    compile_filter,
    evaluate,
    make_data,
)
from pkg.sentry.kernel.signals import SignalInfo
from pkg.sentry.kernel.task import Task
from pkg.sentry.kernel.task_signals import send_to_thread_group
from pkg.sentry.pgalloc.memory_file import MemoryFile
from pkg.sentry.socket import hostifaces
from pkg.sentry.syscalls.linux.linux64 import build_table
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.resolving_path import PathOperation
from pkg.sentry.vfs.task_path import ExecutableFile, open_executable_at
from runsc.boot import console, rootfs
from runsc.boot.mounts import MountError, SpecMounter
from runsc.boot.vfs import mount_root, register_filesystems, working_directory
from runsc.config import Config
from runsc.specutils.seccomp import Program
from runsc.specutils.spec import env_path

log = logging.getLogger(__name__)


class ExecveRefused(SyscallError):
    """ExecveRefused: the container's seccomp profile refuses the execve
    that would start a process (runc checks that execve against it)."""

    __slots__ = ("why",)

    def __init__(self, errno: int, why: str) -> None:
        super().__init__(errno)
        self.why = why

    def __str__(self) -> str:
        return f"{super().__str__()}: linux.seccomp refuses execve ({self.why})"


@dataclass(slots=True)
class ProcessSpec:
    """ProcessSpec describes a process to create in the sandbox."""

    argv: list[str]
    env: list[str]
    cwd: str
    # The executable's path in the sandbox (runsc resolved PATH already).
    executable: str
    # Host descriptors for the application's fd 0, 1, 2...; the sandbox
    # duplicates them.
    stdio: list[int] = field(default_factory=lambda: [0, 1, 2])
    creds: Credentials | None = None
    limits: LimitSet | None = None
    umask: int = 0o022
    # The OCI process.terminal: the process gets a terminal of the
    # container's devpts relayed to stdio[0] (input) and stdio[1] (output)
    # (console.py).
    terminal: bool = False
    # With terminal: stdio is a pty runsc made for the process and sent to
    # a console socket, not runsc's own stdio (runc's foreground mode).
    console: bool = False


def new_platform(config: Config, mf: MemoryFile) -> PtracePlatform:
    """Creates the platform named by --platform."""
    if config.platform == "ptrace":
        return PtracePlatform(mf.fd)
    raise ValueError(f"unknown platform {config.platform!r}")


class ExecutableNotFound(Exception):
    """ExecutableNotFound: a process's executable is not in its PATH."""


class Sandbox:
    """Sandbox owns the MemoryFile, the platform, the kernel and its mount
    namespace.

    Everything it needs from the host it opens in the constructor: the
    container's files come from the gofer, whose connections it is given.

    Args:
        config: runsc's flags.
        root: without gofer connections, the host directory that is the
            container's root, read by hostfs (tests of the sentry alone).
        hostname: the sandbox's host name.
        domainname: the sandbox's NIS domain name.
        gofer_fds: the sentry's ends of the gofer connections: the root's,
            then one per mount of gofer_mounts; the sandbox owns them.
        mounts: the spec's mounts, in order; its gofer mounts
            (pkg.gofer.spec.gofer_mounts) take gofer_fds[1:] in order.
        root_read_only: the container's root is read-only (the spec's
            root.readonly), overlay or not.
        masked_paths: the spec's linux.maskedPaths.
        readonly_paths: the spec's linux.readonlyPaths.
        seccomp: the spec's linux.seccomp, compiled: the filter every
            process of the container starts with.
        init_cwd: the init's working directory, made if missing.
        pids_limit: the spec's linux.resources.pids.limit: the most tasks
            the sandbox holds at once (0 or less: no limit).
        total_memory: the container's memory limit in bytes, what the
            sandbox shows as its total memory; 0 for the host's.

    Raises:
        MountError: a mount, mask or read-only path cannot be applied.
    """

    def __init__(
        self,
        config: Config,
        root: str | None,
        hostname: str = "localhost",
        domainname: str = "",
        gofer_fds: Sequence[int] = (),
        mounts: Sequence[dict[str, Any]] = (),
        root_read_only: bool = False,
        masked_paths: Sequence[str] = (),
        readonly_paths: Sequence[str] = (),
        seccomp: Program | None = None,
        init_cwd: str = "",
        pids_limit: int = 0,
        total_memory: int = 0,
    ) -> None:
        self.config = config
        self.seccomp: SeccompFilter | None = None
        if seccomp is not None:
            self.seccomp = SeccompFilter(
                compile_filter(seccomp.bpf),
                None,
                bool(seccomp.flags & SC.SECCOMP_FILTER_FLAG_LOG),
            )
        host_links: tuple[bytes, ...] = ()
        host_addrs: tuple[bytes, ...] = ()
        host_routes: tuple[bytes, ...] = ()
        if config.network == "host":
            # Before the seccomp filter, which refuses netlink sockets.
            host_links, host_addrs, host_routes = hostifaces.snapshot()
        self.mf = MemoryFile()
        self.platform = new_platform(config, self.mf)
        try:
            self.kernel = Kernel(
                self.platform,
                self.mf,
                KernelConfig(
                    hostname=hostname,
                    domainname=domainname or "(none)",
                    strace=config.strace,
                    strace_syscalls=config.strace_syscalls,
                    strace_log_size=config.strace_log_size,
                    vdso=config.vdso,
                    pids_limit=max(pids_limit, 0),
                    host_network=config.network == "host",
                    host_links=host_links,
                    host_addrs=host_addrs,
                    host_routes=host_routes,
                    total_memory=total_memory,
                ),
                build_table(),
            )
            register_filesystems(self.kernel)
            overlay_root, overlay_all = rootfs.parse_overlay2(config.overlay2)
            self.mount_ns = mount_root(
                self.kernel,
                [socket.socket(fileno=fd) for fd in gofer_fds],
                overlay_root,
                host_root=root or "/",
                spec_mounts=mounts,
                overlay_submounts=overlay_all,
            )
            mounter = SpecMounter(self.kernel.vfs, self.mount_ns, lambda _vd: None)
            mounter.mask(masked_paths)
            mounter.make_read_only(readonly_paths)
            if init_cwd:
                # As runc, which makes the init's working directory if it is
                # missing (before the root turns read-only).
                self._make_dir(init_cwd)
            if root_read_only:
                # After the mount points are made.
                self.mount_ns.root.flags |= MS.MS_RDONLY
        except BaseException:
            self.platform.close()
            raise
        self.root = VirtualDentry(self.mount_ns.root, self.mount_ns.root.root)
        # The terminal relays of processes that have one, by pid.
        self._relays: dict[int, HostRelay] = {}
        self._relays_mu = threading.Lock()

    def _make_dir(self, path: str) -> None:
        try:
            rootfs.make_mount_point(
                self.kernel.vfs,
                root_credentials(),
                VirtualDentry(self.mount_ns.root, self.mount_ns.root.root),
                os.fsencode(path),
                True,
            )
        except SyscallError as e:
            raise MountError(f"mkdir {path} (the working directory): {e}") from None

    def _check_execve_allowed(self) -> None:
        """Fails as the execve of a new process would under runc, which
        installs the profile just before that execve: a profile that
        refuses execve stops the process from starting.

        The call is judged with zero arguments (runc's are pointers into
        its own memory, which a profile cannot usefully compare).

        Raises:
            ExecveRefused: the profile refuses execve.
        """
        if self.seccomp is None:
            return
        ret, _ = evaluate(self.seccomp, make_data(N.SYS_execve, 0, (0,) * 6))
        action = ret & SC.SECCOMP_RET_ACTION_FULL
        if action in (SC.SECCOMP_RET_ALLOW, SC.SECCOMP_RET_LOG):
            return
        if action == SC.SECCOMP_RET_ERRNO:
            raise ExecveRefused(
                min(ret & SC.SECCOMP_RET_DATA, 4095), "the profile's errno"
            )
        if action in (SC.SECCOMP_RET_TRACE, SC.SECCOMP_RET_USER_NOTIF):
            # No tracer or listener: the call fails (kernel/seccomp.c).
            raise ExecveRefused(errno.ENOSYS, "no tracer for the profile's action")
        # KILL and TRAP: under runc the process dies of SIGSYS before it
        # runs (and runc run waits for good); an error says why instead.
        raise ExecveRefused(errno.EPERM, "its action kills the process")

    def create_process(self, spec: ProcessSpec) -> Task:
        """Loads a process; start_process runs it. The first process created
        is the container's init.

        Raises:
            SyscallError: the executable cannot be opened or loaded, or
                the seccomp profile refuses execve (ExecveRefused).
        """
        kernel = self.kernel
        creds = spec.creds or root_credentials()
        root = self.root
        cwd = working_directory(kernel, self.mount_ns, spec.cwd)
        opened: list[ExecutableFile] = []

        def open_exec(path: bytes) -> ExecutableFile:
            start = root if path.startswith(b"/") else cwd
            pop = PathOperation(root=root, start=start, path=path, follow=True)
            f = open_executable_at(kernel.vfs, None, creds, pop)
            opened.append(f)
            return f

        executable = spec.executable
        if "/" not in executable:
            executable = self._search_path(executable, spec.env, open_exec)
        self._check_execve_allowed()
        fds = FDTable()
        con = self._open_console(spec, creds) if spec.terminal else None
        if con is not None:
            for i in range(3):
                con.replica.inc_ref()
                fds.set_fd(i, con.replica)
        else:
            for i, host_fd in enumerate(spec.stdio):
                fds.set_fd(i, HostFile(os.dup(host_fd)))
        try:
            t = kernel.create_init_process(
                exec_file=open_exec(os.fsencode(executable)),
                argv=[a.encode() for a in spec.argv],
                envv=[e.encode() for e in spec.env],
                filename=os.fsencode(executable),
                fd_table=fds,
                root=root,
                cwd=cwd,
                creds=creds,
                limits=spec.limits,
                open_interpreter=open_exec,
            )
        except BaseException:
            fds.close_all()
            if con is not None:
                con.close()
            raise
        finally:
            for f in opened:
                f.close()
        t.fs.umask = spec.umask
        if con is not None:
            con.replica.dec_ref()
            console.attach(con, t)
            relay = console.start_relay(
                con, spec.stdio, str(t.tg.tgid), foreground=not spec.console
            )
            with self._relays_mu:
                self._relays[t.tg.tgid] = relay
            relay.on_done(lambda: self._forget_relay(t.tg.tgid, relay))
        if self.seccomp is not None:
            # The sentry loads the executable itself: the filter applies
            # from the first instruction (the execve was checked above). The
            # task runs no code yet: no lock is needed.
            t.seccomp_filter = self.seccomp
            t.seccomp_mode = SC.SECCOMP_MODE_FILTER
        if con is None and spec.stdio and os.isatty(spec.stdio[0]):
            # The terminal the process was started on is its session's
            # controlling terminal (/dev/tty, job control), with the process
            # in the foreground.
            tty = host_tty(kernel, spec.stdio[0], HostFile)
            with kernel.tasks.mu:
                pg = t.tg.process_group
                if pg is not None and pg.session.tty is None and tty.is_free_locked():
                    tty.attach_locked(pg.session, pg)
        return t

    def _open_console(
        self, spec: ProcessSpec, creds: Credentials
    ) -> console.Console | None:
        if not spec.stdio:
            return None
        try:
            return console.open_console(self.kernel.vfs, self.root, creds.ruid)
        except SyscallError as e:
            # As before terminals were the sentry's: the host terminal
            # itself, without a name in the sandbox.
            log.warning(
                "boot: no terminal in the container's /dev/pts (%s); "
                "the process gets the host's descriptors",
                e,
            )
            return None

    def _forget_relay(self, pid: int, relay: HostRelay) -> None:
        with self._relays_mu:
            if self._relays.get(pid) is relay:
                del self._relays[pid]

    def relay_of(self, pid: int) -> HostRelay | None:
        """Returns the terminal relay of process pid, if it has a live
        one."""
        with self._relays_mu:
            return self._relays.get(pid)

    def wait_relays(self, pids: Sequence[int] | None, timeout: float) -> bool:
        """Waits until the terminal relays of pids (all if None) have
        copied the last output and ended; returns False on timeout."""
        deadline = time.monotonic() + timeout
        with self._relays_mu:
            if pids is None:
                relays = list(self._relays.values())
            else:
                relays = [r for p in pids if (r := self._relays.get(p)) is not None]
        return all(r.done.wait(max(0.0, deadline - time.monotonic())) for r in relays)

    @staticmethod
    def _search_path(
        name: str, env: list[str], open_exec: Callable[[bytes], ExecutableFile]
    ) -> str:
        """Searches the process's PATH for name, as execvp does (runsc
        leaves this to the sandbox when the spec's mounts may hold it).

        Raises:
            ExecutableNotFound: with runc's wording, which container clients
                turn into exit status 127 (126 for permission denied).
        """
        denied = False
        for d in env_path(env).split(":"):
            path = posixpath.join(d or ".", name)
            try:
                open_exec(os.fsencode(path))
            except SyscallError as e:
                denied = denied or e.errno in (errno.EACCES, errno.EPERM)
                continue
            return path
        if denied:
            raise ExecutableNotFound(f'exec: "{name}": permission denied')
        raise ExecutableNotFound(f'exec: "{name}": executable file not found in $PATH')

    def start_process(self, t: Task) -> None:
        """Starts running a process made by create_process."""
        log.info("boot: starting pid %d: %r", t.tid, t.name)
        relay = self.relay_of(t.tg.tgid)
        if relay is not None:
            # A size the client set since the process was created (conmon
            # sets it between create and start) is there when it starts.
            relay.sync_winsize()
        self.kernel.start_task(t)

    def signal_foreground(self, signo: int) -> bool:
        """Sends a terminal's signal (from the host terminal: ^C, a window
        change) to the foreground group of init's controlling terminal;
        returns False if it has none."""
        tg = self.kernel.init_tg
        if tg is None:
            return False
        relay = self.relay_of(tg.tgid)
        if signo == S.SIGWINCH and relay is not None:
            # The host terminal changed size: the sentry's follows it, and
            # signals its foreground group if the size changed.
            relay.sync_winsize()
            return True
        with self.kernel.tasks.mu:
            pg = tg.process_group
            tty = pg.session.tty if pg is not None else None
        signal = getattr(tty, "signal_foreground", None)
        return bool(signal is not None and signal(signo))

    def signal_init(self, signo: int) -> None:
        """Sends a signal from the host to the container's init."""
        tg = self.kernel.init_tg
        if tg is None:
            return
        # From outside the container: init drops it unless it handles it or
        # it is SIGKILL or SIGSTOP (the kernel's SIGNAL_UNKILLABLE).
        send_to_thread_group(tg, SignalInfo(signo=signo, code=S.SI_USER))

    def wait(self, timeout: float | None = None) -> int | None:
        """Waits for init to exit and every task to go; returns init's wait
        status, or None on timeout."""
        return self.kernel.wait(timeout)

    def close(self) -> None:
        """Releases the platform."""
        self.platform.close()
