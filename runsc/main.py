"""runsc: the command-line interface of the sandbox runtime.

Global flags come before the verb, in the forms runc's clients use
(`--root D`, `--root=D`, `-root D`); see config.py. A verb that fails
reports why on stderr and in --log (as JSON lines with --log-format json,
which container clients read) and exits with status 1.

Start-up time matters (container clients run runsc several times per
container), so only the verb's own module is imported, and for verbs that
make a sandbox the sandbox process is started first, to import its modules
while this one imports its own (runsc/sandbox/launch.py).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pkg.sentry.control.errors import ControlError
from runsc import code_cache
from runsc import config as runsc_config
from runsc import log as runsc_log
from runsc.cmd.util import normalize_verb_flags
from runsc.container.errors import ContainerError, ExecutableError
from runsc.sandbox.errors import SandboxError
from runsc.specutils.errors import SpecError

log = logging.getLogger("runsc")

# Every verb and the module that implements it.
VERBS = {
    "boot": "runsc.cmd.boot",
    "create": "runsc.cmd.create",
    "delete": "runsc.cmd.delete",
    "do": "runsc.cmd.do",
    "events": "runsc.cmd.events",
    "exec": "runsc.cmd.exec",
    "gofer": "runsc.cmd.gofer",
    "help": "runsc.cmd.help",
    "install": "runsc.cmd.install",
    "kill": "runsc.cmd.kill",
    "list": "runsc.cmd.list",
    "pause": "runsc.cmd.pause",
    "ps": "runsc.cmd.ps",
    "run": "runsc.cmd.run",
    "spec": "runsc.cmd.spec",
    "start": "runsc.cmd.start",
    "state": "runsc.cmd.state",
    "uninstall": "runsc.cmd.install",
    "version": "runsc.cmd.version",
    "wait": "runsc.cmd.wait",
    "resume": "runsc.cmd.pause",
}

# Verbs that make a sandbox: their sandbox process is started first thing.
SANDBOX_VERBS = frozenset({"create", "run", "do"})

# Failures a verb reports as a message, not a traceback.
USER_ERRORS = (
    ContainerError,
    ExecutableError,
    SpecError,
    ControlError,
    SandboxError,
    ValueError,
    OSError,
)


def build_parser(
    verb: str | None = None,
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """Returns the parser for the global flags and the verb (every verb if
    None)."""
    p = argparse.ArgumentParser(
        prog="runsc",
        description="An application kernel for containers.",
        allow_abbrev=False,
    )
    runsc_config.add_global_flags(p)
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")
    modules = [VERBS[verb]] if verb in VERBS else sorted(set(VERBS.values()))
    for name in modules:
        importlib.import_module(name).add_parser(sub)
    return p, sub


def find_verb(argv: list[str]) -> tuple[str | None, int]:
    """Returns the verb of a normalised command line and its index."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in VERBS:
            return a, i
        if not a.startswith("-"):
            break
        i += 2 if a in runsc_config.VALUE_FLAGS else 1
    return None, -1


def main(argv: list[str] | None = None) -> int:
    """Parses argv and runs the verb; returns the exit status."""
    try:
        argv = runsc_config.normalize_argv(sys.argv[1:] if argv is None else argv)
    except argparse.ArgumentTypeError as e:
        # As argparse reports a bad flag value.
        print(f"runsc: error: {e}", file=sys.stderr)
        return 2
    verb, i = find_verb(argv)
    if verb in SANDBOX_VERBS and "--help" not in argv and "-h" not in argv:
        from runsc.sandbox import launch  # noqa: PLC0415

        launch.launch_early()
    parser, sub = build_parser(verb)
    # The verb's modules are loaded: their @dataclass code joins the cache
    # that the launcher saved after this module's imports.
    code_cache.save_installed()
    if verb is not None:
        # Go-style boolean flags of the verb (--detach=true) need rewriting.
        try:
            verb_argv = normalize_verb_flags(sub.choices[verb], argv[i + 1 :])
        except argparse.ArgumentTypeError as e:
            sub.choices[verb].error(str(e))
        argv = argv[: i + 1] + verb_argv
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help(sys.stderr)
        return 2
    config = runsc_config.config_from_args(args)
    try:
        runsc_log.setup(
            config, args.verb, stderr_errors=not getattr(args, "no_stderr_log", False)
        )
    except OSError as e:
        print(f"runsc: cannot open the log: {_message(e)}", file=sys.stderr)
        return 1
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
