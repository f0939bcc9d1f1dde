"""`runsc boot --config-fd=N`: the sandbox process (internal: runsc starts
it, see runsc/sandbox/launch.py, and configures it over descriptor N; see
runsc/boot/boot.py for the rest)."""

from __future__ import annotations

import argparse
import logging
import sys

from runsc import code_cache
from runsc import config as runsc_config
from runsc import log as runsc_log
from runsc.config import Config

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the internal `boot` verb."""
    p = sub.add_parser("boot", help=argparse.SUPPRESS)
    p.add_argument("--config-fd", type=int, required=True)
    p.set_defaults(func=main, no_stderr_log=True)


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `boot`; never returns."""
    # The sentry's modules load first, while runsc is still busy: that is
    # what starting the sandbox early is for.
    from pkg.abi.linux import prctl as PR  # noqa: PLC0415
    from pkg.sentry.control import control_pb2 as pb  # noqa: PLC0415
    from pkg.unet import unet  # noqa: PLC0415
    from runsc.boot import boot, syscalls  # noqa: PLC0415

    # The sentry's @dataclass code, compiled above, is cached for the next
    # sandbox (some 230 compilations).
    code_cache.save_installed()
    conn = unet.Conn.from_fd(args.config_fd)
    try:
        payload, fds = conn.recv()
    except (EOFError, OSError):
        # runsc gave up on this sandbox before configuring it.
        boot.exit_now(0)
    conn.close()
    msg = pb.BootConfig()
    msg.ParseFromString(payload)
    # The spec, the control socket, the exit file, stdio, then the gofer
    # connections (runsc/sandbox/sandbox.py).
    if len(fds) < 6:
        print(f"boot: expected 6 descriptors or more, got {len(fds)}", file=sys.stderr)
        boot.exit_now(1)

    parser = argparse.ArgumentParser(prog="runsc", allow_abbrev=False)
    runsc_config.add_global_flags(parser)
    config = runsc_config.config_from_args(
        parser.parse_args(runsc_config.normalize_argv(list(msg.global_flags)))
    )
    runsc_log.setup(config, "boot", stderr_errors=False)
    if not msg.attached:
        # A detached sandbox outlives the runsc that started it.
        syscalls.prctl(PR.PR_SET_PDEATHSIG, 0)
    code = boot.boot(
        config,
        boot.BootArgs(
            container_id=msg.container_id,
            bundle=msg.bundle,
            executable=msg.executable,
            spec_fd=fds[0],
            control_fd=fds[1],
            exit_fd=fds[2],
            stdio_fds=fds[3:6],
            console=msg.console,
            network=config.network,
            gofer_fds=fds[6:],
        ),
    )
    boot.exit_now(code)
    return code
