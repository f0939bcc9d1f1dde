"""`runsc do CMD [ARGS...]`: run one command in a fresh sandbox.

The sandbox sees the host's file tree and this process's environment, working
directory and standard descriptors; the command's exit status becomes
runsc's, with death by a signal reported as 128 + the signal number, as a
shell reports it.

The host's root is served by a gofer process (`runsc gofer`, confined:
chroot, file capabilities only, seccomp) under an overlay whose upper layer
is in memory: what the command writes never reaches the host, unless
--overlay2=none.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import sys

from runsc import log as runsc_log
from runsc.boot import rootfs, sandbox
from runsc.config import Config
from runsc.fsgofer import launch

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `do` verb."""
    p = sub.add_parser("do", help="run a command in a new sandbox")
    p.add_argument("--cwd", default="", help="working directory (default: current)")
    p.add_argument("--hostname", default="localhost")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(func=main)


def _resolve(command: str, env: dict[str, str]) -> str | None:
    if "/" in command:
        return command
    return shutil.which(command, path=env.get("PATH", os.defpath))


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `do`."""
    argv = args.command
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        log.error("do: no command given")
        return 2
    executable = _resolve(argv[0], dict(os.environ))
    if executable is None or not os.path.exists(executable):
        log.error("do: %s: command not found", argv[0])
        return 127
    try:
        overlay = rootfs.overlay_root(config.overlay2)
    except ValueError as e:
        log.error("do: %s", e)
        return 2
    # The host root, served by a confined gofer: read-only under the
    # overlay, so that nothing the command does reaches the host.
    gofer, conns = launch.start(config, "/", read_only=overlay)
    spec = sandbox.ProcessSpec(
        argv=argv,
        env=[f"{k}={v}" for k, v in os.environ.items()],
        cwd=args.cwd or os.getcwd(),
        executable=executable,
        hostname=args.hostname,
        gofer_fds=[c.fileno() for c in conns],
    )

    pid = os.fork()
    if pid == 0:
        # The sandbox process.
        code = 1
        try:
            runsc_log.setup(config, "boot")
            status = sandbox.run(config, spec)
            code = sandbox.wait_status_to_exit_code(status)
        except BaseException:
            log.exception("do: sandbox failed")
            code = 128
        finally:
            logging.shutdown()
            sys.stdout.flush()
            os._exit(code)

    # The sandbox has its copies of the connections.
    for c in conns:
        c.close()

    # Signals for the container go to the sandbox, which forwards them.
    def forward(signo: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signo)

    for signo in sandbox.FORWARDED_SIGNALS:
        signal.signal(signo, forward)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            return 128
        except InterruptedError:
            continue
    # The gofer exits once the sandbox has closed its connections.
    gofer.wait()
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
