"""Sandbox: the platform, the kernel, and the container's processes.

This is the heart of the sandbox process (`runsc boot`): it builds the
sentry's kernel over a platform and creates processes in it from host
descriptors that runsc hands over (the executable and the standard
descriptors), so that nothing here opens a host path once the sandbox is
confined.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from pkg.abi.linux import signal as S
from pkg.platform.ptrace.ptrace import PtracePlatform
from pkg.sentry.fsimpl.host.host_file import HostFile
from pkg.sentry.kernel.credentials import Credentials, root_credentials
from pkg.sentry.kernel.fd_table import FDTable
from pkg.sentry.kernel.kernel import Kernel, KernelConfig
from pkg.sentry.kernel.limits import LimitSet
from pkg.sentry.kernel.signals import SignalInfo
from pkg.sentry.kernel.task import Task
from pkg.sentry.kernel.task_signals import send_to_thread_group
from pkg.sentry.loader.elf import ExecFile
from pkg.sentry.pgalloc.memory_file import MemoryFile
from pkg.sentry.syscalls.linux.linux64 import build_table
from runsc.config import Config

log = logging.getLogger(__name__)


class HostExecFile(ExecFile):
    """HostExecFile reads an executable through a host descriptor that runsc
    opened for the sandbox. It owns the descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._size = os.fstat(fd).st_size

    def pread(self, length: int, offset: int) -> bytes:
        return os.pread(self.fd, length, offset)

    def size(self) -> int:
        return self._size

    def close(self) -> None:
        """Closes the descriptor."""
        os.close(self.fd)


@dataclass(slots=True)
class ProcessSpec:
    """ProcessSpec describes a process to create in the sandbox."""

    argv: list[str]
    env: list[str]
    cwd: str
    # The executable, read through a host descriptor.
    executable: ExecFile
    # The name the application sees as its executable (AT_EXECFN).
    filename: str
    # Host descriptors for the application's fd 0, 1, 2...; the sandbox
    # duplicates them.
    stdio: list[int] = field(default_factory=lambda: [0, 1, 2])
    creds: Credentials | None = None
    limits: LimitSet | None = None
    umask: int = 0o022


def new_platform(config: Config, mf: MemoryFile) -> PtracePlatform:
    """Creates the platform named by --platform."""
    if config.platform == "ptrace":
        return PtracePlatform(mf.fd)
    raise ValueError(f"unknown platform {config.platform!r}")


class Sandbox:
    """Sandbox owns the MemoryFile, the platform and the kernel.

    Everything it needs from the host is opened in the constructor, so a
    Sandbox can be built before the process confines itself.
    """

    def __init__(
        self, config: Config, hostname: str = "localhost", domainname: str = ""
    ) -> None:
        self.config = config
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
                ),
                build_table(),
            )
        except BaseException:
            self.platform.close()
            raise

    def create_process(self, spec: ProcessSpec) -> Task:
        """Loads a process; start_process runs it.

        The first process created is the container's init.
        """
        fds = FDTable()
        for i, host_fd in enumerate(spec.stdio):
            fds.set_fd(i, HostFile(os.dup(host_fd)))
        try:
            t = self.kernel.create_init_process(
                exec_file=spec.executable,
                argv=[a.encode() for a in spec.argv],
                envv=[e.encode() for e in spec.env],
                filename=spec.filename.encode(),
                fd_table=fds,
                root="/",
                cwd=spec.cwd,
                creds=spec.creds or root_credentials(),
                limits=spec.limits,
            )
        except BaseException:
            fds.close_all()
            raise
        t.fs.umask = spec.umask
        return t

    def start_process(self, t: Task) -> None:
        """Starts running a process made by create_process."""
        log.info("boot: starting pid %d: %s", t.tid, t.name)
        self.kernel.start_task(t)

    def signal_init(self, signo: int) -> None:
        """Sends a signal to the container's init."""
        tg = self.kernel.init_tg
        if tg is not None:
            send_to_thread_group(tg, SignalInfo(signo=signo, code=S.SI_USER))

    def wait(self, timeout: float | None = None) -> int | None:
        """Waits for init to exit and every task to go; returns init's wait
        status, or None on timeout."""
        return self.kernel.wait(timeout)

    def close(self) -> None:
        """Releases the platform."""
        self.platform.close()
