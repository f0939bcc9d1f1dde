"""Running a sandbox: the platform, the kernel, and the container's first
process, until it exits.

This is the body of the sandbox process (`runsc boot`, or the child that
`runsc do` forks). Everything the sentry needs from the host is opened here,
before the application runs.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass, field

from pkg.abi.linux import signal as S
from pkg.platform.ptrace.ptrace import PtracePlatform
from pkg.sentry.fsimpl.host.host_file import HostFile
from pkg.sentry.kernel.credentials import root_credentials
from pkg.sentry.kernel.fd_table import FDTable
from pkg.sentry.kernel.kernel import Kernel, KernelConfig
from pkg.sentry.kernel.signals import SignalInfo
from pkg.sentry.kernel.task_signals import send_to_thread_group
from pkg.sentry.pgalloc.memory_file import MemoryFile
from pkg.sentry.syscalls.linux.linux64 import build_table
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.resolving_path import PathOperation
from pkg.sentry.vfs.task_path import ExecutableFile, open_executable_at
from runsc.boot.vfs import mount_root, register_filesystems, working_directory
from runsc.config import Config

log = logging.getLogger(__name__)

# Host signals the sandbox forwards to the container's init.
FORWARDED_SIGNALS = (
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
    signal.SIGCONT,
)


@dataclass(slots=True)
class ProcessSpec:
    """ProcessSpec is the container's first process."""

    argv: list[str]
    env: list[str]
    cwd: str
    # Path of the executable to load, opened inside the sandbox.
    executable: str
    # Host descriptors for the application's fd 0, 1, 2...
    stdio: list[int] = field(default_factory=lambda: [0, 1, 2])
    hostname: str = "localhost"


def new_platform(config: Config, mf: MemoryFile):
    """Creates the platform named by --platform."""
    if config.platform == "ptrace":
        return PtracePlatform(mf.fd)
    raise ValueError(f"unknown platform {config.platform!r}")


def wait_status_to_exit_code(status: int) -> int:
    """Maps a wait status to the exit code a shell would report."""
    if status & 0x7F:
        return 128 + (status & 0x7F)
    return (status >> 8) & 0xFF


def run(config: Config, spec: ProcessSpec) -> int:
    """Runs the sandbox to completion and returns the container's wait
    status."""
    mf = MemoryFile()
    platform = new_platform(config, mf)
    try:
        kernel = Kernel(
            platform,
            mf,
            KernelConfig(
                hostname=spec.hostname,
                strace=config.strace,
                strace_syscalls=config.strace_syscalls,
                strace_log_size=config.strace_log_size,
            ),
            build_table(),
        )
        fds = FDTable()
        for i, host_fd in enumerate(spec.stdio):
            fds.set_fd(i, HostFile(os.dup(host_fd)))
        register_filesystems(kernel)
        ns = mount_root(kernel)
        root = VirtualDentry(ns.root, ns.root.root)
        cwd = working_directory(kernel, ns, spec.cwd)
        creds = root_credentials()
        opened: list[ExecutableFile] = []

        def open_exec(path: bytes) -> ExecutableFile:
            start = root if path.startswith(b"/") else cwd
            pop = PathOperation(root=root, start=start, path=path, follow=True)
            f = open_executable_at(kernel.vfs, None, creds, pop)
            opened.append(f)
            return f

        try:
            image = open_exec(os.fsencode(spec.executable))
            init = kernel.create_init_process(
                exec_file=image,
                argv=[a.encode() for a in spec.argv],
                envv=[e.encode() for e in spec.env],
                filename=spec.argv[0].encode()
                if spec.argv
                else spec.executable.encode(),
                fd_table=fds,
                root=root,
                cwd=cwd,
                creds=creds,
                open_interpreter=open_exec,
            )
        finally:
            for f in opened:
                f.close()
        _forward_signals(kernel)
        log.info("boot: starting %s", spec.argv)
        kernel.start_task(init)
        status = kernel.wait()
        assert status is not None
        return status
    finally:
        platform.close()


def _forward_signals(kernel: Kernel) -> None:
    """Delivers host signals aimed at the sandbox to the container's init."""
    if threading.current_thread() is not threading.main_thread():
        return

    def forward(signo: int, _frame: object) -> None:
        tg = kernel.init_tg
        if tg is not None:
            send_to_thread_group(tg, SignalInfo(signo=signo, code=S.SI_USER))

    for signo in FORWARDED_SIGNALS:
        signal.signal(signo, forward)
