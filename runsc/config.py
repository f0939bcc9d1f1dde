"""Config: runsc's global flags, parsed once and handed to every verb.

Flags follow runc's command line where clients depend on it (global flags
before the verb, `--flag value` and `--flag=value`, single-dash long flags)
and keep gVisor's own names (--platform, --network, --strace...).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

PLATFORMS = ("ptrace",)
NETWORKS = ("none", "host", "sandbox")
LOG_FORMATS = ("text", "json")
SECCOMP_MODES = ("enforce", "log", "off")


@dataclass(slots=True)
class Config:
    """Config is the set of global flags."""

    root: str = "/var/run/runsc"
    debug: bool = False
    debug_log: str = ""
    log: str = ""
    log_format: str = "text"
    platform: str = "ptrace"
    network: str = "none"
    strace: bool = False
    strace_syscalls: frozenset[str] = frozenset()
    strace_log_size: int = 1024
    overlay2: str = "root:memory"
    systemd_cgroup: bool = False
    # The sandbox's own seccomp filter (runsc/boot/filter): "enforce",
    # "log" (allow and log what the allowlist lacks) or "off".
    sentry_seccomp: str = "enforce"
    # Kill the sandbox if the sentry looks up a host path after start-up.
    testonly_forbid_host_open: bool = False
    # Map a vDSO into every process (clocks without a system call).
    vdso: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    def to_flags(self) -> list[str]:
        """Returns the flags that recreate this config in a child runsc."""
        flags = [
            f"--root={os.path.abspath(self.root)}",
            f"--platform={self.platform}",
            f"--network={self.network}",
            f"--log-format={self.log_format}",
            f"--overlay2={self.overlay2}",
            f"--sentry-seccomp={self.sentry_seccomp}",
        ]
        if self.debug:
            flags.append("--debug")
        if self.debug_log:
            path = os.path.abspath(self.debug_log)
            if self.debug_log.endswith("/"):
                path += "/"
            flags.append(f"--debug-log={path}")
        if self.log:
            flags.append(f"--log={os.path.abspath(self.log)}")
        if self.strace:
            flags.append("--strace")
        if self.strace_syscalls:
            flags.append(f"--strace-syscalls={','.join(sorted(self.strace_syscalls))}")
        if self.strace_log_size != 1024:
            flags.append(f"--strace-log-size={self.strace_log_size}")
        if self.testonly_forbid_host_open:
            flags.append("--TESTONLY-forbid-host-open")
        if not self.vdso:
            flags.append("--vdso=false")
        return flags


_OVERLAY_MEDIA = ("memory", "self", "anon")


def parse_overlay2(value: str) -> tuple[bool, bool]:
    """Parses --overlay2 ({root|all}:{memory|self|dir=PATH}, or none).

    Returns:
        (overlay on the root, overlay on bind mounts too).

    Raises:
        ValueError: an unknown value.
    """
    if value == "none":
        return False, False
    scope, _, medium = value.partition(":")
    if scope not in ("root", "all") or not (
        medium in _OVERLAY_MEDIA or medium.startswith("dir=")
    ):
        raise ValueError(f"bad --overlay2 value {value!r}")
    return True, scope == "all"


def _bool(value: str, flag: str = "") -> bool:
    """Parses a Go-style boolean flag value.

    Raises:
        argparse.ArgumentTypeError: value is not a boolean.
    """
    v = value.lower()
    if v in ("1", "true", "t", "yes"):
        return True
    if v in ("0", "false", "f", "no"):
        return False
    where = f" for {flag}" if flag else ""
    raise argparse.ArgumentTypeError(f"invalid boolean value {value!r}{where}")


def _syscall_names(value: str) -> str:
    """Checks a --strace-syscalls list, as gVisor refuses unknown names.

    Raises:
        argparse.ArgumentTypeError: a name is not a system call's.
    """
    from pkg.abi.linux.sysno import NAMES  # noqa: PLC0415

    known = set(NAMES.values())
    unknown = [s for s in value.split(",") if s and s not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown system call {unknown[0]!r}")
    return value


def _state_root(value: str) -> str:
    # An empty root would put state under the working directory (runc makes
    # it relative, then fails with a bare ENOENT or lists whatever is there).
    if not value:
        raise argparse.ArgumentTypeError("empty: it must name the state directory")
    return value


def add_global_flags(p: argparse.ArgumentParser) -> None:
    """Adds the global flags to a parser."""
    default_root = (
        os.path.join(os.environ["XDG_RUNTIME_DIR"], "runsc")
        if os.environ.get("XDG_RUNTIME_DIR")
        else "/var/run/runsc"
    )
    p.add_argument(
        "--root", type=_state_root, default=default_root, help="state directory"
    )
    p.add_argument("--debug", action="store_true", help="debug logging")
    p.add_argument("--debug-log", default="", help="debug log file, or directory/")
    p.add_argument("--log", default="", help="log file for errors")
    p.add_argument("--log-format", default="text", choices=LOG_FORMATS)
    p.add_argument("--platform", default="ptrace", choices=PLATFORMS)
    p.add_argument("--network", default="none", choices=NETWORKS)
    p.add_argument("--strace", action="store_true", help="trace syscalls")
    p.add_argument(
        "--strace-syscalls",
        type=_syscall_names,
        default="",
        help="comma-separated syscalls to trace",
    )
    p.add_argument("--strace-log-size", type=int, default=1024)
    p.add_argument("--overlay2", default="root:memory")
    p.add_argument("--systemd-cgroup", action="store_true")
    p.add_argument(
        "--sentry-seccomp",
        default="enforce",
        choices=SECCOMP_MODES,
        help="the sandbox's own seccomp filter: log finds what it lacks",
    )
    p.add_argument(
        "--vdso",
        type=_bool,
        default=True,
        help="map a vDSO that reads the clocks without a system call "
        "(--vdso=false: libc makes the system calls)",
    )
    p.add_argument(
        "--TESTONLY-forbid-host-open",
        dest="testonly_forbid_host_open",
        action="store_true",
        help="kill the sandbox if the sentry opens a host path after start-up",
    )


def config_from_args(ns: argparse.Namespace) -> Config:
    """Builds a Config from parsed global flags."""
    syscalls = frozenset(s for s in ns.strace_syscalls.split(",") if s)
    return Config(
        root=ns.root,
        debug=ns.debug,
        debug_log=ns.debug_log,
        log=ns.log,
        log_format=ns.log_format,
        platform=ns.platform,
        network=ns.network,
        strace=ns.strace or bool(syscalls),
        strace_syscalls=syscalls,
        strace_log_size=ns.strace_log_size,
        overlay2=ns.overlay2,
        systemd_cgroup=ns.systemd_cgroup,
        sentry_seccomp=ns.sentry_seccomp,
        testonly_forbid_host_open=ns.testonly_forbid_host_open,
        vdso=ns.vdso,
    )


# Boolean global flags: Go's flag package accepts --flag and --flag=bool.
_BOOL_FLAGS = frozenset(
    {"--debug", "--strace", "--systemd-cgroup", "--TESTONLY-forbid-host-open"}
)
VALUE_FLAGS = frozenset(
    {
        "--root",
        "--debug-log",
        "--log",
        "--log-format",
        "--platform",
        "--network",
        "--strace-syscalls",
        "--strace-log-size",
        "--overlay2",
        "--sentry-seccomp",
        "--vdso",
    }
)


def normalize_argv(argv: list[str]) -> list[str]:
    """Rewrites Go-style single-dash global flags (-root x, -log=x) to their
    double-dash form. Only the flags before the verb are touched."""
    out = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-") or a == "--":
            return out + argv[i:]
        if not a.startswith("--") and len(a.split("=", 1)[0]) > 2:
            a = "-" + a
        name, eq, value = a.partition("=")
        if eq and name in _BOOL_FLAGS:
            i += 1
            if _bool(value, name):
                out.append(name)
            continue
        out.append(a)
        if a in VALUE_FLAGS and i + 1 < len(argv):
            out.append(argv[i + 1])
            i += 1
        i += 1
    return out
