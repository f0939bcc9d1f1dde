"""The sandbox process: `runsc boot`, started by `runsc create`.

runsc starts this process as init of a new PID namespace (launch.py) with
descriptor 2 (stderr) on a pipe that `create` reads until the sandbox says
READY_LINE, or dies: anything written before that is the reason the sandbox
could not be created. Descriptors 0 and 1 are /dev/null; once ready,
descriptor 2 is /dev/null too (errors go to --log and --debug-log, which
were opened at start). Its configuration (control.proto's BootConfig, see
runsc/cmd/boot.py) brings these descriptors (BootArgs):

- the container's checked spec (JSON), to read and close;
- the container's standard descriptors;
- the control socket, already listening;
- a file in the state directory where the sandbox writes the container's
  exit status before it exits, for verbs that come later.

It confines itself (confine.py), builds the sentry, creates init, serves the
control socket, installs the seccomp filter, says it is ready, and then waits
for the container to stop. Its own exit status is the container's (a death
by signal as 128 + the signal's number), which is what a container client
that watches the --pid-file process expects.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

from pkg.abi.linux import capability as C
from pkg.abi.linux import errno
from pkg.abi.linux import ioctl as I
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.control import control_pb2 as pb
from pkg.sentry.control.server import Server
from runsc import log as runsc_log
from runsc.boot import confine, host_path_guard
from runsc.boot.controller import (
    TERMINAL_DRAIN_SECONDS,
    Controller,
    credentials_from,
    limits_from,
)
from runsc.boot.filter import config as seccomp_config
from runsc.boot.sandbox import ProcessSpec, Sandbox
from runsc.boot.signals import FORWARDED_SIGNALS
from runsc.boot.syscalls import set_name
from runsc.config import Config
from runsc.sandbox.launch import READY_LINE, wait_status_to_exit_code
from runsc.specutils import seccomp as seccomp_profile
from runsc.specutils import spec as specutils

log = logging.getLogger(__name__)

# How long the answer to a pending wait may take to leave once the
# container has stopped, before the sandbox exits anyway.
_DRAIN_SECONDS = 2.0


@dataclass(slots=True)
class BootArgs:
    """BootArgs are the flags of `runsc boot`."""

    container_id: str
    bundle: str
    # The init executable's path in the container (runsc searched PATH).
    executable: str
    spec_fd: int
    control_fd: int
    exit_fd: int
    stdio_fds: list[int]
    console: bool
    network: str
    # The sentry's ends of the gofer connections: the root's, then one per
    # gofer mount of the spec (pkg.gofer.spec.gofer_mounts). Without any,
    # the root is read through hostfs (tests of the sentry alone).
    gofer_fds: list[int] = field(default_factory=list)


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        b = os.read(fd, 1 << 16)
        if not b:
            break
        chunks.append(b)
    os.close(fd)
    return b"".join(chunks)


def _warm_up() -> None:
    """Makes the libraries do now whatever they would do lazily the first
    time, while files can still be opened: imports inside functions, the
    time zone, protobuf's message classes."""
    time.localtime()
    record = logging.makeLogRecord({"msg": "warm-up", "levelno": logging.INFO})
    runsc_log.JsonFormatter().format(record)
    runsc_log.GlogFormatter().format(record)
    for name in pb.DESCRIPTOR.message_types_by_name:
        msg = getattr(pb, name)()
        msg.ParseFromString(msg.SerializeToString())
    pb.Response(error="x", ps=pb.PsResponse()).SerializeToString()
    json.loads(json.dumps({"status": 0}))
    "\u00e9".encode().decode("utf-8", errors="replace")


def _network_mode(config: Config, spec: specutils.Spec) -> str:
    if config.network == "host":
        return "host"
    if config.network == "sandbox":
        path = specutils.namespace_path(spec, "network")
        if path:
            return path
    return "none"


def _pids_limit(spec: dict) -> int:
    """Returns linux.resources.pids.limit, 0 if none: the sentry enforces
    it on its tasks (runsc/sandbox/cgroup.py explains why not the host)."""
    res = (spec.get("linux") or {}).get("resources") or {}
    limit = (res.get("pids") or {}).get("limit")
    return int(limit) if isinstance(limit, int) and limit > 0 else 0


def _init_spec(spec: specutils.Spec, args: BootArgs) -> ProcessSpec:
    settings = specutils.process_settings(spec["process"])
    creds = pb.Credentials(
        uid=settings.uid,
        gid=settings.gid,
        additional_gids=settings.additional_gids,
        cap_bounding=settings.bounding,
        cap_effective=settings.effective,
        cap_inheritable=settings.inheritable,
        cap_permitted=settings.permitted,
        cap_ambient=settings.ambient,
        no_new_privileges=settings.no_new_privileges,
    )
    rlimits = [pb.Rlimit(resource=r, soft=s, hard=h) for r, s, h in settings.rlimits]
    return ProcessSpec(
        argv=settings.argv,
        env=settings.env,
        cwd=settings.cwd,
        executable=args.executable,
        stdio=args.stdio_fds,
        creds=credentials_from(creds),
        limits=limits_from(rlimits),
        umask=settings.umask,
        terminal=settings.terminal,
        console=args.console,
    )


def boot(config: Config, args: BootArgs) -> int:
    """Runs the sandbox process; returns its exit status."""
    set_name("runsc-sandbox")
    devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    try:
        spec = json.loads(_read_all(args.spec_fd))
        if args.console:
            # The terminal runsc made for the container becomes the
            # sandbox's controlling terminal, so that the host tells the
            # sandbox of its size changes (SIGWINCH), which the container's
            # terminal then follows (runsc/boot/console.py). runsc started
            # the sandbox in a session of its own.
            fcntl.ioctl(args.stdio_fds[0], I.TIOCSCTTY, 0)

        _warm_up()
        confine.enter_namespaces(_network_mode(config, spec))
        if args.gofer_fds:
            confine.pivot_to_new_root(None)
        else:
            confine.pivot_to_new_root(specutils.root_path(spec, args.bundle))
        keep = confine.SENTRY_CAPS
        if config.network == "host":
            # hostinet binds ports below 1024 for applications that may.
            keep |= 1 << C.CAP_NET_BIND_SERVICE
        confine.drop_capabilities(keep)

        hostname, domainname = specutils.uts_names(spec)
        app_seccomp = (spec.get("linux") or {}).get("seccomp")
        sandbox = Sandbox(
            config,
            None if args.gofer_fds else confine.ROOTFS_DIR,
            hostname=hostname,
            domainname=domainname,
            seccomp=(
                None
                if app_seccomp is None
                else seccomp_profile.compile_profile(app_seccomp)
            ),
            gofer_fds=args.gofer_fds,
            mounts=spec.get("mounts") or [],
            root_read_only=bool((spec.get("root") or {}).get("readonly")),
            masked_paths=(spec.get("linux") or {}).get("maskedPaths") or [],
            readonly_paths=(spec.get("linux") or {}).get("readonlyPaths") or [],
            init_cwd=spec["process"].get("cwd") or "/",
            pids_limit=_pids_limit(spec),
            total_memory=specutils.memory_limit(spec),
        )
        for path, value in specutils.ipc_sysctls(spec).items():
            try:
                sandbox.kernel.ipc.sysctl_set(path, value)
            except SyscallError:
                # As writing the file fails under runc.
                raise RuntimeError(
                    f"linux.sysctl: {path.replace('/', '.')}={value!r}: invalid value"
                ) from None
        init_spec = _init_spec(spec, args)
        try:
            init = sandbox.create_process(init_spec)
        except SyscallError as e:
            hint = ""
            if e.errno == errno.ENOEXEC:
                hint = " (not an executable the sentry can load)"
            raise RuntimeError(f"exec {init_spec.executable}: {e}{hint}") from None
        if config.strace and not config.debug_log:
            # --strace without a debug log writes to stderr (runsc/log.py);
            # once ready that is the container's stderr, where the program's
            # own errors go, instead of /dev/null.
            os.dup2(args.stdio_fds[2], devnull, inheritable=False)
        for fd in set(args.stdio_fds):
            os.close(fd)
        controller = Controller(sandbox, init, console=args.console)
        server = Server(socket.socket(fileno=args.control_fd), controller)
        server.start()

        for signo in FORWARDED_SIGNALS:
            signal.signal(
                signo, lambda signo, _f: controller.forward_host_signal(signo)
            )
        if config.testonly_forbid_host_open:
            # Before the sandbox's own filter, which refuses seccomp(2).
            host_path_guard.install()
        seccomp_config.install(
            config.sentry_seccomp, host_network=config.network == "host"
        )
    except Exception as e:
        # Still on the pipe that create reads: tell it why.
        log.debug("boot: creating the sandbox failed", exc_info=True)
        print(f"creating the sandbox: {e}", file=sys.stderr, flush=True)
        return 1

    log.info("boot: container %s created", args.container_id)
    print(READY_LINE, file=sys.stderr, flush=True)
    os.dup2(devnull, 2)
    os.close(devnull)

    # Wait on the main thread, where Python runs signal handlers.
    while not controller.stopped.wait(1.0):
        pass
    status = controller.exit_status
    assert status is not None
    code = wait_status_to_exit_code(status)
    # The terminals' last output reaches the host before the client learns
    # of the exit (from this process's).
    if not sandbox.wait_relays(None, TERMINAL_DRAIN_SECONDS):
        log.warning("boot: a terminal's output did not drain; dropped")
    try:
        os.write(args.exit_fd, json.dumps({"status": status}).encode())
    except OSError as e:
        log.warning("boot: recording the exit status: %s", e)
    server.wait_idle(_DRAIN_SECONDS)
    log.info("boot: sandbox exits with %d", code)
    return code


def exit_now(code: int) -> None:
    """Ends the sandbox process at once. Every process of its PID namespace
    (the platform's stubs) dies with it."""
    logging.shutdown()
    os._exit(code)
