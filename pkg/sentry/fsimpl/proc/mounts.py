"""/proc/[pid]/mounts and /proc/[pid]/mountinfo (fs/proc_namespace.c)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import mount as MS
from pkg.sentry.vfs.dentry import VirtualDentry

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.dentry import Dentry
    from pkg.sentry.vfs.mount import Mount

# Per-mount flags as show_mnt_opts names them, in its order.
_MNT_OPTS = (
    (MS.MS_NOSUID, "nosuid"),
    (MS.MS_NODEV, "nodev"),
    (MS.MS_NOEXEC, "noexec"),
    (MS.MS_NOATIME, "noatime"),
    (MS.MS_NODIRATIME, "nodiratime"),
    (MS.MS_RELATIME, "relatime"),
    (MS.MS_NOSYMFOLLOW, "nosymfollow"),
)


def _escape(path: bytes) -> str:
    """Escapes space, tab, newline and backslash as octal (mangle)."""
    out = []
    for b in path:
        if b in b" \t\n\\":
            out.append(f"\\{b:03o}")
        else:
            out.append(chr(b))
    return "".join(out)


def _fs_path(m: Mount, d: Dentry) -> bytes:
    """Returns d's path from the root of its filesystem (mountinfo's
    root field)."""
    parts = []
    cur: Dentry | None = d
    while cur is not None:
        parent = cur.parent_dentry()
        if parent is None:
            break
        parts.append(cur.dentry_name())
        cur = parent
    return b"/" + b"/".join(reversed(parts))


def mount_options(m: Mount) -> str:
    """Returns the per-mount options ("rw,nosuid,relatime")."""
    ro = m.flags & MS.MS_RDONLY or m.fs.read_only
    opts = ["ro" if ro else "rw"]
    opts += [name for flag, name in _MNT_OPTS if m.flags & flag]
    return ",".join(opts)


def _optional_fields(m: Mount) -> str:
    """Returns mountinfo's optional fields, each followed by a space
    (show_mountinfo): the peer group of a shared mount, the master group of
    a slave, "unbindable"."""
    out = ""
    if m.group is not None:
        out += f"shared:{m.group.id} "
    if m.master is not None:
        out += f"master:{m.master.id} "
        # TODO(#5): propagate_from:N, the nearest dominating peer group
        # visible from the reader's root, when the master is not.
    if m.unbindable:
        out += "unbindable "
    return out


def render_mounts(t: Task, info: bool) -> bytes:
    """Returns /proc/pid/mounts (info False) or mountinfo of t's mount
    namespace, as seen from t's root."""
    fs_ctx = t.fs
    if fs_ctx is None or fs_ctx.mount_ns is None:
        return b""
    root = fs_ctx.root
    vfs = root.mount.vfs
    lines = []
    for m in vfs.mounts_of(fs_ctx.mount_ns):
        if m.parent is None or m.point is None:
            if m is not root.mount:
                continue
            point, reachable = b"/", True
        else:
            point, reachable = vfs.path_name(root, VirtualDentry(m.parent, m.point))
        if not reachable:
            continue
        fs_type = m.fs.fs_type.name or "none"
        fs_opts = m.fs.mount_options()
        if info:
            parent_id = m.parent.id if m.parent is not None else m.id
            super_opts = "ro" if m.fs.read_only else "rw"
            if fs_opts:
                super_opts += "," + fs_opts
            optional = _optional_fields(m)
            lines.append(
                f"{m.id} {parent_id} {m.fs.dev_major}:{m.fs.dev_minor} "
                f"{_escape(_fs_path(m, m.root))} {_escape(point)} "
                f"{mount_options(m)} {optional}- {fs_type} "
                f"{_escape(m.source.encode())} {super_opts}\n"
            )
        else:
            opts = mount_options(m)
            if fs_opts:
                opts += "," + fs_opts
            lines.append(
                f"{_escape(m.source.encode())} {_escape(point)} {fs_type} {opts} 0 0\n"
            )
    return "".join(lines).encode()
