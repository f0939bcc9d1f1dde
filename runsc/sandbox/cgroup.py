"""The sandbox's host cgroups: linux.cgroupsPath and linux.resources.

runc puts the container's processes in the cgroup that linux.cgroupsPath
names, in every hierarchy mounted on the host, and writes linux.resources
into it. Clients rely on that: podman and containerd read the container's
statistics from it, `--memory` and `--pids-limit` are limits there, and the
client removes nothing itself. As gVisor does, runsc puts the whole sandbox
there (the sentry, its stubs, which run the application's code, and the
gofer), so the limits bound everything the container costs the host.

Unlike runc, the limits are on the sandbox's host processes, not on the
application's: memory counts the sentry's own besides the application's
(the MemoryFile), and CPU time the sentry's work for the application. The
pid limit is not written on the host: each application thread costs the
host two (a sentry thread and a stub thread) plus the sentry's own, and a
sentry that cannot make a thread fails as a whole; the sentry counts the
application's tasks against it instead (KernelConfig.pids_limit), so a fork
past it fails with EAGAIN as under runc. linux.resources.devices is not
written either: the sentry serves its own devices, and the host devices it
opens are its own business. No cgroupsPath means no cgroup, as under
gVisor (runc would make one named after the container).

Hierarchies are found in /proc/self/mountinfo: every cgroup (v1) mount, one
per set of controllers, and the cgroup2 mount (the unified hierarchy, alone
or beside v1 ones in hybrid mode). A path is taken from each hierarchy's
root: an absolute cgroupsPath from the hierarchy's top, a relative one from
runsc's own cgroup there, as runc does. The systemd form
("slice:prefix:name", with --systemd-cgroup) needs systemd's D-Bus API:
it is warned about and not applied (TODO(#7)).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

__all__ = [
    "CgroupError",
    "Hierarchy",
    "Plan",
    "SystemdPathError",
    "hierarchies",
    "plan",
    "remove_quietly",
]

# How long delete waits for a cgroup to empty before it gives up on it.
_REMOVE_SECONDS = 5.0


class CgroupError(Exception):
    """CgroupError: the container's cgroup cannot be made or joined."""


class SystemdPathError(CgroupError):
    """SystemdPathError: the cgroup is named in systemd's form, which this
    runtime cannot apply (a warning, not a failure)."""


@dataclass(frozen=True, slots=True)
class Hierarchy:
    """Hierarchy is one mounted cgroup hierarchy.

    Attributes:
        mount_point: where it is mounted.
        root: the hierarchy path of the mount's root (not "/" inside a
            cgroup namespace or for a bind of a sub-cgroup).
        controllers: its v1 controllers and name= options; empty for v2.
        version: 1 or 2.
    """

    mount_point: str
    root: str
    controllers: frozenset[str]
    version: int

    def key(self) -> str:
        """Returns the name /proc/PID/cgroup gives the hierarchy."""
        return ",".join(sorted(self.controllers)) if self.version == 1 else ""


# cgroup (v1) mount options that are not controllers.
_V1_FLAGS = frozenset(
    {"rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode"}
)


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def hierarchies(mountinfo: str = "/proc/self/mountinfo") -> list[Hierarchy]:
    """Returns the mounted cgroup hierarchies, one mount each."""
    seen: set[tuple[str, frozenset[str]]] = set()
    out = []
    with open(mountinfo) as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            kind, _source, *rest = right.split()
            if kind not in ("cgroup", "cgroup2") or len(fields) < 5:
                continue
            if kind == "cgroup":
                opts = rest[0].split(",") if rest else []
                ctrls = frozenset(
                    o
                    for o in opts
                    if o.startswith("name=") or ("=" not in o and o not in _V1_FLAGS)
                )
                version = 1
            else:
                ctrls = frozenset()
                version = 2
            ident = (kind, ctrls)
            if ident in seen:
                continue
            seen.add(ident)
            out.append(
                Hierarchy(_unescape(fields[4]), _unescape(fields[3]), ctrls, version)
            )
    return out


def own_cgroups(pid: str = "self") -> dict[str, str]:
    """Returns /proc/PID/cgroup as hierarchy key -> path."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _id, key, path = line.rstrip("\n").split(":", 2)
            out[key] = path
    return out


@dataclass(frozen=True, slots=True)
class Plan:
    """Plan is the container's cgroup directory in each hierarchy and the
    resources to write there."""

    # (hierarchy, host directory), in mount order.
    dirs: tuple[tuple[Hierarchy, str], ...]
    # linux.resources.
    resources: dict[str, Any]

    def make(self) -> list[str]:
        """Makes every directory and writes the limits.

        Returns:
            Warnings for resources that no hierarchy here applies.

        Raises:
            CgroupError: a directory or a limit cannot be written.
        """
        # In hybrid mode the unified hierarchy has no controllers: the
        # limits are v1's there.
        v2_limits = all(h.version == 2 for h, _d in self.dirs)
        applied: set[str] = set()
        for h, d in self.dirs:
            _make_dirs(h, d)
            if h.version == 2 and v2_limits:
                _enable_controllers(h, d)
            if h.version == 1:
                writes = _v1_writes(h.controllers, self.resources, d)
            elif v2_limits:
                writes = _v2_writes(self.resources, d)
            else:
                writes = []
            for name, value in writes:
                _write(d, name, value)
                applied |= {k for k, pre in _KIND_FILES.items() if name.startswith(pre)}
        return [
            f"linux.resources.{k} is not applied (no host cgroup here takes it)"
            for k in sorted(_asked(self.resources) - applied)
        ]

    def join(self, pid: int) -> None:
        """Moves a process (all its threads) into every directory.

        Raises:
            CgroupError: it cannot be moved.
        """
        for _h, d in self.dirs:
            _write(d, "cgroup.procs", str(pid))

    def remove(self) -> None:
        """Removes the directories once their processes are gone (best
        effort: a directory still busy after a few seconds is left, with a
        warning)."""
        deadline = time.monotonic() + _REMOVE_SECONDS
        for _h, d in self.dirs:
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        log.warning("cgroup: %s not removed: %s", d, e.strerror)
                        break
                    time.sleep(0.02)


def _write(d: str, name: str, value: str) -> None:
    try:
        with open(os.path.join(d, name), "w") as f:
            f.write(value)
    except OSError as e:
        raise CgroupError(
            f"cgroup: writing {value!r} to {os.path.join(d, name)}: {e.strerror}"
        ) from None


def _read(d: str, name: str) -> str:
    with open(os.path.join(d, name)) as f:
        return f.read().strip()


def _make_dirs(h: Hierarchy, d: str) -> None:
    """Makes d and its missing parents in h. A new cpuset cgroup starts
    with no cpus and no memory nodes and takes no process: each gets its
    parent's, as runc gives them."""
    missing = []
    cur = d
    while not os.path.isdir(cur) and cur != h.mount_point:
        missing.append(cur)
        cur = os.path.dirname(cur)
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            pass
        except OSError as e:
            raise CgroupError(f"cgroup: mkdir {path}: {e.strerror}") from None
        if "cpuset" in h.controllers:
            parent = os.path.dirname(path)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not _read(path, name):
                    _write(path, name, _read(parent, name))


def _enable_controllers(h: Hierarchy, d: str) -> None:
    """Enables, in each parent of d below the mount, the controllers the
    limits need (a v2 cgroup has only the files of the controllers its
    parent enables). A controller that cannot be enabled is left out: its
    limits are then reported as not applied."""
    rel = os.path.relpath(os.path.dirname(d), h.mount_point)
    parts = [] if rel == "." else rel.split("/")
    parents = [os.path.join(h.mount_point, *parts[:i]) for i in range(len(parts) + 1)]
    for parent in parents:
        try:
            available = set(_read(parent, "cgroup.controllers").split())
        except OSError:
            continue
        for ctrl in sorted(available & {"cpu", "cpuset", "memory", "pids"}):
            # EBUSY where the parent has processes of its own.
            with contextlib.suppress(CgroupError):
                _write(parent, "cgroup.subtree_control", f"+{ctrl}")


def _host_dir(h: Hierarchy, cgroups_path: str, own: dict[str, str]) -> str:
    if cgroups_path.startswith("/"):
        inner = cgroups_path
    else:
        inner = os.path.join(own.get(h.key(), "/"), cgroups_path)
    inner = os.path.normpath(inner)
    # A path outside the mount's root cannot be reached through it.
    rel = os.path.relpath(inner, h.root) if h.root != "/" else inner.lstrip("/")
    if rel.startswith(".."):
        raise CgroupError(
            f"cgroup: {cgroups_path} is outside {h.mount_point} (root {h.root})"
        )
    return os.path.normpath(os.path.join(h.mount_point, rel))


def _v1_writes(
    ctrls: frozenset[str], res: dict[str, Any], d: str
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    mem = res.get("memory") or {}
    if "memory" in ctrls:
        if mem.get("limit") is not None:
            out.append(("memory.limit_in_bytes", str(mem["limit"])))
        if mem.get("swap") is not None and os.path.exists(
            os.path.join(d, "memory.memsw.limit_in_bytes")
        ):
            out.append(("memory.memsw.limit_in_bytes", str(mem["swap"])))
        if mem.get("reservation") is not None:
            out.append(("memory.soft_limit_in_bytes", str(mem["reservation"])))
        if mem.get("swappiness") is not None:
            out.append(("memory.swappiness", str(mem["swappiness"])))
    cpu = res.get("cpu") or {}
    if "cpu" in ctrls:
        if cpu.get("shares"):
            out.append(("cpu.shares", str(cpu["shares"])))
        # The period first: a quota is checked against the current one.
        if cpu.get("period"):
            out.append(("cpu.cfs_period_us", str(cpu["period"])))
        if cpu.get("quota"):
            out.append(("cpu.cfs_quota_us", str(cpu["quota"])))
    if "cpuset" in ctrls:
        if cpu.get("cpus"):
            out.append(("cpuset.cpus", cpu["cpus"]))
        if cpu.get("mems"):
            out.append(("cpuset.mems", cpu["mems"]))
    blkio = res.get("blockIO") or {}
    if "blkio" in ctrls and blkio.get("weight"):
        out.append(("blkio.weight", str(blkio["weight"])))
    return out


def _v2_writes(res: dict[str, Any], d: str) -> list[tuple[str, str]]:
    # Only the files of controllers enabled for d exist.
    def has(name: str) -> bool:
        return os.path.exists(os.path.join(d, name))

    out: list[tuple[str, str]] = []
    mem = res.get("memory") or {}
    if mem.get("limit") is not None and has("memory.max"):
        limit = int(mem["limit"])
        out.append(("memory.max", str(limit) if limit > 0 else "max"))
        swap = mem.get("swap")
        if swap is not None and has("memory.swap.max"):
            # v1's memsw is memory and swap together; v2's is swap alone.
            out.append(
                ("memory.swap.max", "max" if int(swap) < 0 else str(int(swap) - limit))
            )
    if mem.get("reservation") is not None and has("memory.low"):
        out.append(("memory.low", str(mem["reservation"])))
    cpu = res.get("cpu") or {}
    if cpu.get("shares") and has("cpu.weight"):
        # runc's conversion of v1 shares (2..262144) to a weight (1..10000).
        shares = int(cpu["shares"])
        out.append(("cpu.weight", str(1 + ((shares - 2) * 9999) // 262142)))
    if (cpu.get("quota") or cpu.get("period")) and has("cpu.max"):
        quota = cpu.get("quota")
        period = cpu.get("period") or 100000
        q = "max" if not quota or int(quota) < 0 else str(quota)
        out.append(("cpu.max", f"{q} {period}"))
    if cpu.get("cpus") and has("cpuset.cpus"):
        out.append(("cpuset.cpus", cpu["cpus"]))
    if cpu.get("mems") and has("cpuset.mems"):
        out.append(("cpuset.mems", cpu["mems"]))
    return out


def _asked(res: dict[str, Any]) -> set[str]:
    """Returns the resource kinds res sets a value for that the host's
    cgroups should apply."""
    out = set()
    for kind, value in res.items():
        # Devices and pids are the sentry's (see the module's comment).
        if kind in ("devices", "pids") or not value:
            continue
        if isinstance(value, dict) and all(v is None for v in value.values()):
            continue
        out.add(kind)
    return out


# Resource kinds and the files that apply them (to find what was not).
_KIND_FILES = {
    "memory": "memory.",
    "cpu": "cpu",
    "blockIO": "blkio.",
}


def plan(
    linux: dict[str, Any],
    found: Iterable[Hierarchy] | None = None,
    own: dict[str, str] | None = None,
) -> Plan | None:
    """Returns the cgroups of a spec's linux section, or None if it names
    none.

    Args:
        linux: the spec's linux section.
        found: the hierarchies (default: the mounted ones).
        own: runsc's cgroups (default: /proc/self/cgroup).

    Raises:
        CgroupError: the path is unusable (SystemdPathError: it is in
            systemd's form).
    """
    path = linux.get("cgroupsPath") or ""
    if not path:
        return None
    if ":" in path:
        # TODO(#7): systemd's "slice:prefix:name" needs its D-Bus API.
        raise SystemdPathError(
            f"cgroup: {path!r} is systemd's form, which needs systemd: "
            "linux.cgroupsPath and linux.resources are not applied"
        )
    hs = list(hierarchies() if found is None else found)
    own = own_cgroups() if own is None else own
    dirs = tuple((h, _host_dir(h, path, own)) for h in hs)
    return Plan(dirs, dict(linux.get("resources") or {}))


def remove_quietly(p: Plan | None) -> None:
    """Removes p's directories, if any, never raising."""
    if p is not None:
        with contextlib.suppress(Exception):
            p.remove()
