"""The OCI runtime spec (config.json): loading, checking, and reading it.

A spec is kept as the JSON object it was read as; the functions here check
it once, at create time, and turn the parts the sandbox uses into plain
values. Whatever this runtime cannot honour yet is reported: an error when
running without it would be wrong, a warning (logged where the container
client shows it) when the container still runs as asked in every way an
application can observe today.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from pkg.abi.linux import capability as C
from pkg.abi.linux import limits as L
from pkg.abi.linux import signal as S
from pkg.gofer.spec import is_gofer_mount
from runsc.specutils import seccomp
from runsc.specutils.errors import SpecError

__all__ = ["Spec", "SpecError"]

Spec = dict[str, Any]

# Container ids: what runc accepts.
_ID_RE = re.compile(r"^[\w+.-]+$")
MAX_ID_LEN = 1024

# The PATH a process gets when its environment has none (runc's default).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Namespace types of linux.namespaces.
NAMESPACE_TYPES = frozenset(
    {"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"}
)

# The hooks of the OCI spec and where this runtime runs them.
HOST_HOOKS = ("prestart", "createRuntime", "poststart", "poststop")
CONTAINER_HOOKS = ("createContainer", "startContainer")


def validate_id(container_id: str) -> None:
    """Raises SpecError unless container_id is a valid container id."""
    if (
        not container_id
        or len(container_id) > MAX_ID_LEN
        or container_id in (".", "..")
        or not _ID_RE.match(container_id)
    ):
        raise SpecError(f"invalid container id {container_id!r}")


def load(bundle: str) -> Spec:
    """Reads BUNDLE/config.json.

    Raises:
        SpecError: the file is missing or is not a JSON object.
    """
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise SpecError(f"cannot read {path}: {e.strerror}") from None
    try:
        spec = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise SpecError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(spec, dict):
        raise SpecError(f"{path}: the spec must be a JSON object")
    return spec


def _expect(cond: bool, msg: str) -> None:
    if not cond:
        raise SpecError(msg)


def _is_str_list(v: object) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_uint(v: object, bits: int = 32) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << bits


def root_path(spec: Spec, bundle: str) -> str:
    """Returns the absolute host path of the container's root."""
    path = spec["root"]["path"]
    if not os.path.isabs(path):
        path = os.path.join(bundle, path)
    return os.path.normpath(os.path.abspath(path))


def check(spec: Spec, bundle: str) -> list[str]:
    """Checks a spec for create.

    Returns:
        Warnings for fields that are accepted but not (yet) honoured.

    Raises:
        SpecError: the spec is malformed or asks for something this runtime
            cannot do.
    """
    warnings: list[str] = []
    version = spec.get("ociVersion")
    _expect(isinstance(version, str), "ociVersion must be a string")
    if not version.startswith("1."):
        warnings.append(f"ociVersion {version!r} is not 1.x; continuing anyway")

    root = spec.get("root")
    _expect(isinstance(root, dict), "root is required")
    _expect(isinstance(root.get("path"), str) and root["path"], "root.path is required")
    _expect(isinstance(root.get("readonly", False), bool), "root.readonly must be bool")
    rp = root_path(spec, bundle)
    _expect(os.path.isdir(rp), f"root.path {rp} is not a directory")

    process = spec.get("process")
    _expect(isinstance(process, dict), "process is required")
    warnings += check_process(process)

    for key in ("hostname", "domainname"):
        _expect(isinstance(spec.get(key, ""), str), f"{key} must be a string")
        # runc's sethostname/setdomainname fail with EINVAL past
        # __NEW_UTS_LEN bytes; the sentry would truncate instead.
        _expect(
            len(spec.get(key, "").encode()) <= 64,
            f"{key} is longer than 64 bytes",
        )
    annotations = spec.get("annotations", {})
    _expect(
        isinstance(annotations, dict)
        and all(isinstance(v, str) for v in annotations.values()),
        "annotations must map strings to strings",
    )

    warnings += _check_mounts(spec.get("mounts", []))
    _check_bind_sources(spec.get("mounts", []), bundle)
    warnings += _check_hooks(spec.get("hooks", {}))
    warnings += _check_linux(spec.get("linux", {}))
    return warnings


def check_process(process: Spec) -> list[str]:
    """Checks a process object (of a spec, or of exec --process).

    Returns:
        Warnings, as check does.

    Raises:
        SpecError: the process is malformed.
    """
    warnings: list[str] = []
    args = process.get("args")
    _expect(_is_str_list(args) and bool(args), "process.args must not be empty")
    _expect(_is_str_list(process.get("env", [])), "process.env must list strings")
    cwd = process.get("cwd", "/")
    _expect(
        isinstance(cwd, str) and cwd.startswith("/"), "process.cwd must be absolute"
    )
    _expect(isinstance(process.get("terminal", False), bool), "terminal must be bool")
    user = process.get("user", {})
    _expect(isinstance(user, dict), "process.user must be an object")
    _expect(_is_uint(user.get("uid", 0)), "process.user.uid must be a uint32")
    _expect(_is_uint(user.get("gid", 0)), "process.user.gid must be a uint32")
    gids = user.get("additionalGids", [])
    _expect(
        isinstance(gids, list) and all(_is_uint(g) for g in gids),
        "process.user.additionalGids must list uint32s",
    )
    if "username" in user:
        warnings.append("process.user.username is ignored (uid and gid are used)")
    umask = user.get("umask")
    _expect(umask is None or _is_uint(umask, 12), "process.user.umask is invalid")
    _expect(
        isinstance(process.get("noNewPrivileges", False), bool),
        "process.noNewPrivileges must be bool",
    )
    caps = process.get("capabilities", {})
    _expect(isinstance(caps, dict), "process.capabilities must be an object")
    for kind, names in caps.items():
        _expect(_is_str_list(names), f"process.capabilities.{kind} must list names")
        unknown = [n for n in names if n not in C.BY_NAME]
        if unknown:
            warnings.append(
                f"unknown capabilities in {kind} are ignored: {', '.join(unknown)}"
            )
    for rl in process.get("rlimits", []):
        _expect(isinstance(rl, dict), "process.rlimits entries must be objects")
        kind = rl.get("type")
        _expect(kind in L.NAMES, f"unknown rlimit type {kind!r}")
        _expect(
            _is_uint(rl.get("soft"), 64) and _is_uint(rl.get("hard"), 64),
            f"{kind}: soft and hard must be uint64",
        )
        _expect(rl["soft"] <= rl["hard"], f"{kind}: soft limit exceeds hard limit")
    for key in ("apparmorProfile", "selinuxLabel"):
        if process.get(key):
            warnings.append(f"process.{key} is not applied: the sentry is the boundary")
    if "ioPriority" in process or "scheduler" in process:
        warnings.append("process.ioPriority and process.scheduler are ignored")
    return warnings


def _check_mounts(mounts: object) -> list[str]:
    _expect(isinstance(mounts, list), "mounts must be a list")
    warnings = []
    for m in mounts:
        _expect(isinstance(m, dict), "mounts entries must be objects")
        dest = m.get("destination")
        _expect(
            isinstance(dest, str) and dest.startswith("/"),
            f"mount destination {dest!r} must be an absolute path",
        )
        _expect(
            _is_str_list(m.get("options", [])), f"{dest}: options must list strings"
        )
        _expect(
            isinstance(m.get("source", ""), str), f"{dest}: source must be a string"
        )
        _expect(isinstance(m.get("type", ""), str), f"{dest}: type must be a string")
        if not is_gofer_mount(m) and not m.get("type"):
            raise SpecError(
                f"mount {dest}: a type is required unless it is a bind mount"
            )
    # Bind mounts are the gofer's (pkg.gofer.spec.gofer_mounts); the other
    # types are the sentry's, looked up when the sandbox mounts them
    # (runsc/boot/mounts.py), which warns about a type it lacks.
    return warnings


def _check_bind_sources(mounts: list[Spec], bundle: str) -> None:
    """Fails, as runc does, on a bind mount whose source cannot be reached
    (it is stat'ed, so a dangling symlink fails too), before the gofer would
    find out in the middle of the sandbox's start."""
    for m in mounts:
        if not is_gofer_mount(m):
            continue
        src = os.path.join(bundle, m.get("source") or "")
        try:
            os.stat(src)
        except OSError as e:
            raise SpecError(
                f"mount {m['destination']}: bind source {src}: {e.strerror}"
            ) from None


def _check_hooks(hooks: object) -> list[str]:
    _expect(isinstance(hooks, dict), "hooks must be an object")
    warnings = []
    for kind, entries in hooks.items():
        _expect(isinstance(entries, list), f"hooks.{kind} must be a list")
        for h in entries:
            _expect(
                isinstance(h, dict) and isinstance(h.get("path"), str),
                f"hooks.{kind} entries need a path",
            )
            _expect(os.path.isabs(h["path"]), f"hook path {h['path']} must be absolute")
            _expect(_is_str_list(h.get("args", [])), f"{h['path']}: args")
            _expect(_is_str_list(h.get("env", [])), f"{h['path']}: env")
            timeout = h.get("timeout")
            _expect(
                timeout is None or (_is_uint(timeout) and timeout > 0),
                f"{h['path']}: timeout must be positive",
            )
        if kind in CONTAINER_HOOKS and entries:
            warnings.append(
                f"hooks.{kind} are not run: they would run inside the container, "
                "where there is no host process"
            )
        elif kind not in HOST_HOOKS and kind not in CONTAINER_HOOKS:
            warnings.append(f"unknown hook kind {kind!r} is ignored")
    return warnings


def _check_linux(linux: object) -> list[str]:
    _expect(isinstance(linux, dict), "linux must be an object")
    warnings = []
    seen = set()
    for ns in linux.get("namespaces", []):
        _expect(isinstance(ns, dict), "linux.namespaces entries must be objects")
        kind = ns.get("type")
        _expect(kind in NAMESPACE_TYPES, f"unknown namespace type {kind!r}")
        _expect(kind not in seen, f"namespace {kind} is listed twice")
        seen.add(kind)
        path = ns.get("path", "")
        _expect(isinstance(path, str), f"namespace {kind}: path must be a string")
        if path and kind != "network":
            warnings.append(
                f"joining the host {kind} namespace {path} is not supported: the "
                "sentry gives the container its own"
            )
    if "user" in seen or linux.get("uidMappings") or linux.get("gidMappings"):
        warnings.append(
            "user namespace mappings are not applied: ids inside the sandbox are "
            "the sentry's and map to no host user"
        )
    for key in ("maskedPaths", "readonlyPaths"):
        paths = linux.get(key, [])
        _expect(_is_str_list(paths), f"linux.{key} must list paths")
        for p in paths:
            _expect(p.startswith("/"), f"linux.{key}: {p!r} is not absolute")
    sysctl = linux.get("sysctl", {})
    _expect(
        isinstance(sysctl, dict) and all(isinstance(v, str) for v in sysctl.values()),
        "linux.sysctl must map names to strings",
    )
    warnings += _check_sysctl(sysctl)
    if linux.get("seccomp") is not None:
        try:
            prog = seccomp.compile_profile(linux["seccomp"])
        except seccomp.SeccompError as e:
            raise SpecError(str(e)) from None
        warnings += prog.warnings
    # linux.cgroupsPath and linux.resources are applied to the sandbox on
    # the host (runsc/sandbox/cgroup.py), which warns about what it cannot.
    for key in (
        "devices",
        "intelRdt",
        "personality",
        "mountLabel",
        "rootfsPropagation",
    ):
        if linux.get(key):
            warnings.append(f"linux.{key} is ignored")
    return warnings


# linux.sysctl: the keys the sentry implements (its UTS names), and the ones
# Linux keeps per namespace (IPC, network, UTS), which are all runc accepts:
# setting any other would change the whole host under runc.
SENTRY_SYSCTLS = frozenset({"kernel.hostname", "kernel.domainname"})
# The IPC limits the sentry keeps (pkg/sentry/kernel/ipc/namespace.py's
# IPC_SYSCTLS), applied by ipc_sysctls.
IPC_SYSCTLS = frozenset(
    {
        "fs.mqueue.msg_default",
        "fs.mqueue.msg_max",
        "fs.mqueue.msgsize_default",
        "fs.mqueue.msgsize_max",
        "fs.mqueue.queues_max",
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
    }
)
_NAMESPACED_SYSCTLS = frozenset({"kernel.sem", "kernel.shm_rmid_forced"})
_NAMESPACED_SYSCTL_PREFIXES = ("fs.mqueue.", "net.")


def _check_sysctl(sysctl: dict[str, str]) -> list[str]:
    ignored = []
    for key in sorted(sysctl):
        if key in SENTRY_SYSCTLS or key in IPC_SYSCTLS:
            continue
        if key in _NAMESPACED_SYSCTLS or key.startswith(_NAMESPACED_SYSCTL_PREFIXES):
            # TODO(#7): kernel.sem, kernel.shm_rmid_forced and the network
            # sysctls, once the sentry has knobs for them.
            ignored.append(key)
            continue
        raise SpecError(
            f"linux.sysctl: {key} is not in a separate kernel namespace and "
            "cannot be set for a container"
        )
    if ignored:
        return [
            "linux.sysctl: not implemented by the sentry, ignored: "
            + ", ".join(ignored)
        ]
    return []


def ipc_sysctls(spec: Spec) -> dict[str, str]:
    """Returns linux.sysctl's IPC limits as /proc/sys paths ("kernel/shmmax")
    and their values, for the sentry to apply before the container
    starts."""
    sysctl = (spec.get("linux") or {}).get("sysctl") or {}
    return {
        key.replace(".", "/"): value
        for key, value in sorted(sysctl.items())
        if key in IPC_SYSCTLS
    }


def uts_names(spec: Spec) -> tuple[str, str]:
    """Returns the container's host and domain names: the spec's hostname
    and domainname, which linux.sysctl's kernel.hostname and
    kernel.domainname override (they are applied later under runc)."""
    sysctl = (spec.get("linux") or {}).get("sysctl") or {}
    hostname = sysctl.get("kernel.hostname") or spec.get("hostname") or "localhost"
    domainname = sysctl.get("kernel.domainname") or spec.get("domainname") or ""
    return hostname, domainname


def memory_limit(spec: Spec) -> int:
    """Returns the container's memory limit in bytes
    (linux.resources.memory.limit), or 0 without one. The sandbox shows it
    as its total memory (/proc/meminfo's MemTotal), as gVisor's
    --total-memory does; cgroups themselves are not applied."""
    resources = (spec.get("linux") or {}).get("resources") or {}
    limit = (resources.get("memory") or {}).get("limit")
    # -1 (and anything not positive) means unlimited.
    if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
        return limit
    return 0


@dataclass(slots=True)
class ProcessSettings:
    """ProcessSettings are the parts of a process object the sentry uses."""

    argv: list[str]
    env: list[str]
    cwd: str
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    # Capability sets as bit masks.
    bounding: int = 0
    effective: int = 0
    inheritable: int = 0
    permitted: int = 0
    ambient: int = 0
    no_new_privileges: bool = False
    rlimits: list[tuple[int, int, int]] = field(default_factory=list)
    terminal: bool = False
    umask: int = 0o022


def cap_mask(names: list[str]) -> int:
    """Returns the bit mask of the capabilities named (unknown ones are
    skipped; check warned about them)."""
    mask = 0
    for n in names:
        if n in C.BY_NAME:
            mask |= 1 << C.BY_NAME[n]
    return mask


def process_settings(process: Spec) -> ProcessSettings:
    """Returns the settings of a checked process object."""
    user = process.get("user", {})
    caps = process.get("capabilities")
    if caps is None:
        # No capabilities object: runc leaves its own (all of them) to the
        # process, which keeps them as root and loses all but the bounding
        # set as any other user.
        every = [C.NAMES[n] for n in range(C.CAP_LAST_CAP + 1)]
        caps = {"bounding": every}
        if user.get("uid", 0) == 0:
            caps.update(effective=every, permitted=every)
    return ProcessSettings(
        argv=list(process["args"]),
        env=list(process.get("env", [])),
        cwd=process.get("cwd") or "/",
        uid=user.get("uid", 0),
        gid=user.get("gid", 0),
        additional_gids=list(user.get("additionalGids", [])),
        bounding=cap_mask(caps.get("bounding", [])),
        effective=cap_mask(caps.get("effective", [])),
        inheritable=cap_mask(caps.get("inheritable", [])),
        permitted=cap_mask(caps.get("permitted", [])),
        ambient=cap_mask(caps.get("ambient", [])),
        no_new_privileges=process.get("noNewPrivileges", False),
        rlimits=[
            (L.NAMES.index(r["type"]), r["soft"], r["hard"])
            for r in process.get("rlimits", [])
        ],
        terminal=process.get("terminal", False),
        umask=user.get("umask", 0o022),
    )


def env_path(env: list[str]) -> str:
    """Returns PATH from a process environment, or the default."""
    for e in env:
        if e.startswith("PATH="):
            return e[5:]
    return DEFAULT_PATH


def namespace_path(spec: Spec, kind: str) -> str | None:
    """Returns the path of a namespace of the spec to join, "" for a new
    namespace, or None if the spec does not list it (the host's)."""
    for ns in spec.get("linux", {}).get("namespaces", []):
        if ns.get("type") == kind:
            return ns.get("path", "")
    return None


def parse_signal(value: str) -> int:
    """Parses a signal as `kill` takes it: 9, KILL, SIGKILL, sigkill,
    RTMIN+3.

    Raises:
        ValueError: the value names no signal.
    """
    v = value.strip()
    if v.isdigit():
        signo = int(v)
        if 0 < signo <= S.SIGRTMAX:
            return signo
        raise ValueError(f"invalid signal {value!r}")
    name = v.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    for signo, n in S.NAMES.items():
        if n == name:
            return signo
    m = re.fullmatch(r"SIGRTM(IN|AX)([+-]\d+)?", name)
    if m:
        base = S.SIGRTMIN if m.group(1) == "IN" else S.SIGRTMAX
        signo = base + int(m.group(2) or 0)
        if S.SIGRTMIN <= signo <= S.SIGRTMAX:
            return signo
    raise ValueError(f"invalid signal {value!r}")
