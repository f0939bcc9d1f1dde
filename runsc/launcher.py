"""The Python half of runsc's launcher (launcher.sh.in is the shell half).

The shell half has already put the runfiles tree on sys.path and started the
interpreter with -I -S. This module runs runsc.main and leaves the process
without the interpreter's tear-down, which frees every module and object one
by one: about 8 ms of every runsc command on this machine, a tenth of a
whole `runsc do true` (docs/performance.md). The code that @dataclass
compiles during the imports comes from a cache (code_cache.py).
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading

from runsc import code_cache


def _exit_code(code: object) -> int:
    """Maps a main() result or SystemExit code to a status, as sys.exit."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _hold_standard_fds() -> None:
    """Puts /dev/null on whichever of fds 0-2 the caller left closed.

    Otherwise the first file runsc opens takes the slot and is handed to
    the container as its stdio (a control socket as its stdout). Unlike
    running the command natively, where it would see the descriptor closed
    (EBADF), the container then reads nothing and writes to /dev/null.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open("/dev/null", os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115


def run() -> None:
    """Runs runsc with sys.argv and exits the process."""
    _hold_standard_fds()
    # Imports make tens of thousands of objects and no garbage cycles worth
    # collecting; collections during them cost about 2 ms.
    gc.disable()
    cache = code_cache.install(
        os.path.join(
            os.path.dirname(os.path.abspath(__file__)),
            "__pycache__",
            f"dataclass-code.{sys.implementation.cache_tag}.marshal",
        )
    )
    from runsc.main import main  # noqa: PLC0415 (after the two above)

    cache.save()
    gc.enable()
    try:
        code = main()
    except SystemExit as e:
        code = e.code

    # Threads still running get the interpreter's usual wait for them.
    if threading.active_count() > 1:
        sys.exit(code)
    status = _exit_code(code)
    # What the tear-down would do and that matters: exit handlers (logging
    # flushes and closes its files there) and buffered standard streams.
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 120
    os._exit(status)
