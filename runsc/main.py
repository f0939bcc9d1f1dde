"""runsc: the command-line interface of the sandbox runtime.

Global flags come before the verb, in the forms runc's clients use
(`--root D`, `--root=D`, `-root D`); see config.py. A verb that fails
reports why on stderr and in --log (as JSON lines with --log-format json,
which container clients read) and exits with status 1.
"""

from __future__ import annotations

import argparse
import logging
import sys

from pkg.sentry.control.server import ControlError
from runsc import config as runsc_config
from runsc import log as runsc_log
from runsc.cmd import (
    boot,
    create,
    delete,
    do,
    events,
    help,
    install,
    kill,
    pause,
    ps,
    run,
    spec,
    start,
    state,
    version,
    wait,
)
from runsc.cmd import exec as exec_cmd
from runsc.cmd import list as list_cmd
from runsc.cmd.util import normalize_verb_flags
from runsc.container.console import ConsoleError
from runsc.container.hooks import HookError
from runsc.container.state import ContainerError
from runsc.sandbox.sandbox import SandboxError
from runsc.specutils.spec import SpecError

log = logging.getLogger("runsc")

VERBS = (
    boot,
    create,
    delete,
    do,
    events,
    exec_cmd,
    help,
    install,
    kill,
    list_cmd,
    pause,
    ps,
    run,
    spec,
    start,
    state,
    version,
    wait,
)

# Failures a verb reports as a message, not a traceback.
USER_ERRORS = (
    ContainerError,
    SpecError,
    ControlError,
    SandboxError,
    HookError,
    ConsoleError,
    ValueError,
    OSError,
)


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """Returns the parser for the global flags and every verb."""
    p = argparse.ArgumentParser(
        prog="runsc",
        description="An application kernel for containers.",
        allow_abbrev=False,
    )
    runsc_config.add_global_flags(p)
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")
    for verb in VERBS:
        verb.add_parser(sub)
    return p, sub


def main(argv: list[str] | None = None) -> int:
    """Parses argv and runs the verb; returns the exit status."""
    argv = runsc_config.normalize_argv(sys.argv[1:] if argv is None else argv)
    parser, sub = build_parser()
    # Go-style boolean flags of the verb (--detach=true) need rewriting too.
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in sub.choices:
            argv = argv[: i + 1] + normalize_verb_flags(sub.choices[a], argv[i + 1 :])
            break
        if not a.startswith("-"):
            break
        i += 2 if a in runsc_config.VALUE_FLAGS else 1
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help(sys.stderr)
        return 2
    args.parser, args.subparsers = parser, sub
    config = runsc_config.config_from_args(args)
    runsc_log.setup(
        config, args.verb, stderr_errors=not getattr(args, "no_stderr_log", False)
    )
    log.debug("runsc: %s", " ".join(sys.argv))
    try:
        return args.func(config, args)
    except KeyboardInterrupt:
        return 130
    except USER_ERRORS as e:
        log.error("%s", _message(e))
        log.debug("%s failed", args.verb, exc_info=True)
        return 1


def _message(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        where = f": {e.filename}" if e.filename else ""
        return f"{e.strerror}{where}"
    return str(e)


if __name__ == "__main__":
    sys.exit(main())
