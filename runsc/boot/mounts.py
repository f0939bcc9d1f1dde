"""The spec's mounts, masked and read-only paths, applied in the sandbox's
mount namespace (runc's libcontainer/rootfs_linux.go does this on the host;
here the sentry's VFS is the mount table).

Mounts are applied in the spec's order. Bind mounts are the gofer's (one
connection each, rootfs.py); every other type is looked up in the VFS's
filesystem-type registry, so a type the sentry registers (proc, sysfs,
devpts...) is mounted as soon as it exists. A type that is not registered is
skipped with a logged warning, except proc and sysfs, which get an empty
read-only tmpfs so that nothing else shows through their mount points.

The sandbox adds the mounts every container expects (/proc, /sys, /dev,
/dev/pts, /dev/shm, /tmp) where the spec has none for that destination and
the directory exists in the root, as gVisor does; each goes right after the
last spec mount above it, so that a spec's /dev does not hide the default
/dev/pts. The default /tmp, which runc does not make, is mounted only on an
empty directory, as gVisor's: an image's files in /tmp stay visible, as
under runc. A tmpfs on /dev is given the device nodes and links runc makes;
a tmpfs with the tmpcopyup option (runc's and crun's extension, which
podman uses) starts with a copy of the directory it covers.

Then linux.maskedPaths: a file is covered by a read-only bind of the null
device (reads see nothing, as runc's bind of /dev/null), a directory by an
empty read-only tmpfs; linux.readonlyPaths are bound onto themselves
read-only. Paths that do not exist are skipped, as runc does.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import mount as MS
from pkg.abi.linux import stat as S
from pkg.abi.linux.stat import STATX_BASIC_STATS, STATX_GID, STATX_MODE, STATX_UID
from pkg.errors.syscall_error import SyscallError
from pkg.gofer.spec import is_gofer_mount
from pkg.sentry.fsimpl.tmpfs.tmpfs import TmpfsOptions
from pkg.sentry.kernel.credentials import root_credentials
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.filesystem import GetFilesystemOptions
from pkg.sentry.vfs.options import (
    GetDentryOptions,
    MkdirOptions,
    MknodOptions,
    OpenOptions,
    SetStatOptions,
)
from pkg.sentry.vfs.resolving_path import PathOperation
from runsc.boot import rootfs

if TYPE_CHECKING:
    from collections.abc import Callable

    from pkg.abi.linux.stat import Statx
    from pkg.sentry.vfs.dirent import Dirent
    from pkg.sentry.vfs.file_description import FileDescription
    from pkg.sentry.vfs.mount import Mount, MountNamespace
    from pkg.sentry.vfs.vfs import VirtualFilesystem

log = logging.getLogger(__name__)

# Mount options that are MS_* flags: name -> (flags to clear, flags to set).
_FLAG_OPTIONS: dict[str, tuple[int, int]] = {
    "ro": (0, MS.MS_RDONLY),
    "rw": (MS.MS_RDONLY, 0),
    "nosuid": (0, MS.MS_NOSUID),
    "suid": (MS.MS_NOSUID, 0),
    "nodev": (0, MS.MS_NODEV),
    "dev": (MS.MS_NODEV, 0),
    "noexec": (0, MS.MS_NOEXEC),
    "exec": (MS.MS_NOEXEC, 0),
    "sync": (0, MS.MS_SYNCHRONOUS),
    "async": (MS.MS_SYNCHRONOUS, 0),
    "dirsync": (0, MS.MS_DIRSYNC),
    "mand": (0, MS.MS_MANDLOCK),
    "nomand": (MS.MS_MANDLOCK, 0),
    "noatime": (0, MS.MS_NOATIME),
    "atime": (MS.MS_NOATIME, 0),
    "nodiratime": (0, MS.MS_NODIRATIME),
    "diratime": (MS.MS_NODIRATIME, 0),
    "relatime": (0, MS.MS_RELATIME),
    "norelatime": (MS.MS_RELATIME, 0),
    "strictatime": (0, MS.MS_STRICTATIME),
    "nostrictatime": (MS.MS_STRICTATIME, 0),
    "nosymfollow": (0, MS.MS_NOSYMFOLLOW),
}

# Options that say how to mount rather than what: bind mounts and mount
# propagation. No host mount can propagate into the sandbox, so spec
# mounts start private. TODO(#7): the sentry now has propagation between
# its own namespaces; a spec's "rshared" is not applied, so mountinfo
# shows no shared:N where runc's would, and a container that unshares its
# mount namespace gets private copies of such mounts.
_IGNORED_OPTIONS = frozenset(
    {
        "bind",
        "rbind",
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "unbindable",
        "runbindable",
        "defaults",
    }
)

# Filesystem types whose mount point must not stay an empty directory of the
# root if the sentry lacks the type: they get an empty read-only tmpfs.
# TODO(#7): cgroup/cgroup2 are not sentry filesystems yet: podman's and
# runc's /sys/fs/cgroup mounts are skipped with a warning.
_SEALED_TYPES = frozenset({"proc", "sysfs"})

# The key of a compiled mount that is made only if its mount point is an
# empty directory when its turn comes (not a spec key: the OCI spec has none
# with this prefix).
IF_EMPTY = "runsc.ifEmpty"

# The mounts every container gets when its spec has none at the
# destination (and the destination is a directory of the root).
DEFAULT_MOUNTS: tuple[dict[str, Any], ...] = (
    {
        "destination": "/proc",
        "type": "proc",
        "source": "proc",
        "options": ["nosuid", "noexec", "nodev"],
    },
    {
        "destination": "/sys",
        "type": "sysfs",
        "source": "sysfs",
        "options": ["nosuid", "noexec", "nodev", "ro"],
    },
    {
        "destination": "/dev",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
        "destination": "/dev/pts",
        "type": "devpts",
        "source": "devpts",
        "options": [
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ],
    },
    {
        "destination": "/dev/shm",
        "type": "tmpfs",
        "source": "shm",
        "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
    {
        # Not one of runc's: the sandbox's /tmp is its own memory, as
        # gVisor's, but only where it hides nothing (a non-empty /tmp is
        # the root's, as under runc). runsc do, whose root is the host's,
        # asks for its own /tmp in its spec.
        "destination": "/tmp",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "nodev", "mode=1777"],
        IF_EMPTY: True,
    },
)

# The null device (mem major 1, minor 3): what masks files.
_NULL = (1, 3)


@dataclass(slots=True)
class MountOptions:
    """MountOptions are a spec mount's options split as mount(8) does."""

    flags: int = 0
    # The filesystem's own options (mount(2)'s data), in order.
    data: list[str] = field(default_factory=list)
    # tmpcopyup: the new tmpfs starts with a copy of what it covers.
    tmpcopyup: bool = False


def parse_options(options: Sequence[str]) -> MountOptions:
    """Splits spec mount options into MS_* flags and data."""
    out = MountOptions()
    for o in options:
        if o in _FLAG_OPTIONS:
            clear, add = _FLAG_OPTIONS[o]
            out.flags = (out.flags & ~clear) | add
        elif o == "tmpcopyup":
            out.tmpcopyup = True
        elif o in _IGNORED_OPTIONS:
            continue
        else:
            out.data.append(o)
    return out


def _is_under(path: str, parent: str) -> bool:
    parent = parent.rstrip("/")
    return path != parent and path.startswith(parent + "/")


def _norm(path: str) -> str:
    # normpath keeps a leading "//".
    return "/" + os.path.normpath("/" + path).lstrip("/")


def compile_mounts(
    spec_mounts: Sequence[dict[str, Any]], root_has_dir: Callable[[str], bool]
) -> list[dict[str, Any]]:
    """Returns the mounts to apply, in order: the spec's, with the default
    mounts it lacks inserted.

    Args:
        spec_mounts: the spec's mounts (checked).
        root_has_dir: reports whether a path is a directory of the root,
            before any mount: a default mount needs its directory.
    """
    out = [dict(m, destination=_norm(m["destination"])) for m in spec_mounts]
    spec_dests = {m["destination"] for m in out}
    defaults: set[int] = set()
    for d in DEFAULT_MOUNTS:
        dest = d["destination"]
        if dest in spec_dests:
            continue
        parents = [i for i, m in enumerate(out) if _is_under(dest, m["destination"])]
        if parents:
            pos = parents[-1] + 1
        else:
            if not root_has_dir(dest):
                continue
            pos = 0
        # After the defaults already placed here, in DEFAULT_MOUNTS order.
        while pos < len(out) and id(out[pos]) in defaults:
            pos += 1
        m = dict(d)
        defaults.add(id(m))
        out.insert(pos, m)
    return out


class MountError(Exception):
    """MountError: a spec mount could not be applied."""


class SpecMounter:
    """SpecMounter applies a spec's mounts to the sandbox's mount namespace.

    Args:
        vfs: the sandbox's VFS, every filesystem type registered.
        ns: the mount namespace whose root is the container's root.
        populate_dev: fills a new tmpfs on /dev with device nodes.
    """

    def __init__(
        self,
        vfs: VirtualFilesystem,
        ns: MountNamespace,
        populate_dev: Callable[[VirtualDentry], None],
    ) -> None:
        self.vfs = vfs
        self.ns = ns
        self.creds = root_credentials()
        self.root = VirtualDentry(ns.root, ns.root.root)
        self._populate_dev = populate_dev
        self._null: VirtualDentry | None = None
        self.warnings: list[str] = []

    def _pop(self, path: str, follow: bool = True) -> PathOperation:
        return PathOperation(
            root=self.root, start=self.root, path=os.fsencode(path), follow=follow
        )

    def _lookup(self, path: str) -> VirtualDentry | None:
        try:
            return self.vfs.get_dentry_at(
                None, self.creds, self._pop(path), GetDentryOptions()
            )
        except SyscallError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise

    def is_dir(self, path: str) -> bool:
        """Reports whether path is a directory in the namespace."""
        vd = self._lookup(path)
        return vd is not None and vd.dentry.is_dir()

    def _is_empty_dir(self, path: str) -> bool:
        """Reports whether path is a directory with nothing in it."""
        if not self.is_dir(path):
            return False
        d = self.vfs.open_at(
            None, self.creds, self._pop(path), OpenOptions(F.O_RDONLY | F.O_DIRECTORY)
        )
        found: list[bytes] = []

        def add(e: Dirent) -> bool:
            if e.name in (b".", b".."):
                return True
            found.append(e.name)
            return False

        try:
            d.iterate_dirents(None, add)  # type: ignore[arg-type]
        finally:
            d.dec_ref()
        return not found

    def _warn(self, msg: str) -> None:
        log.warning("boot: %s", msg)
        self.warnings.append(msg)

    def _types(self) -> set[str]:
        return {name for name, _opts in self.vfs.filesystem_types()}

    def apply(
        self,
        mounts: Sequence[dict[str, Any]],
        gofer_conns: Sequence[socket.socket],
        overlay: bool,
    ) -> None:
        """Applies compiled mounts (compile_mounts) in order; the gofer
        mounts among them take gofer_conns in order.

        Raises:
            MountError: a mount failed.
        """
        conns = list(gofer_conns)
        types = self._types()
        for m in mounts:
            dest = m["destination"]
            opts = parse_options(m.get("options") or [])
            try:
                if m.get(IF_EMPTY) and not self._is_empty_dir(dest):
                    log.info("boot: %s is not empty: no tmpfs over it", dest)
                    continue
                if is_gofer_mount(m):
                    if not conns:
                        raise MountError(f"mount {dest}: no gofer connection for it")
                    rootfs.mount_gofer(
                        self.vfs, self.ns, m, conns.pop(0), overlay, opts.flags
                    )
                    continue
                kind = m.get("type") or ""
                if kind not in types:
                    if kind in _SEALED_TYPES:
                        self._warn(
                            f"mount {dest}: filesystem type {kind!r} is not "
                            "registered in the sentry; an empty read-only "
                            "directory is mounted there instead"
                        )
                        self._mount_fs(dest, "tmpfs", "none", MS.MS_RDONLY, [], 0o555)
                    else:
                        self._warn(
                            f"mount {dest}: filesystem type {kind!r} is not "
                            "registered in the sentry; skipped"
                        )
                    continue
                self._mount_spec_fs(m, kind, opts)
            except SyscallError as e:
                raise MountError(
                    f"mount {dest} ({m.get('type') or 'bind'}): {e}"
                ) from None
        if conns:
            raise MountError(f"{len(conns)} gofer connections left over")

    def _mount_spec_fs(self, m: dict[str, Any], kind: str, opts: MountOptions) -> None:
        dest = m["destination"]
        source = m.get("source") or kind
        covered = None
        if opts.tmpcopyup and kind == "tmpfs" and self.is_dir(dest):
            # Held open: the directory stays reachable once covered.
            covered = self.vfs.open_at(
                None,
                self.creds,
                self._pop(dest),
                OpenOptions(F.O_RDONLY | F.O_DIRECTORY),
            )
        try:
            mode = 0o1777 if kind == "tmpfs" else 0o755
            vd = self._mount_fs(dest, kind, source, opts.flags, opts.data, mode)
            if covered is not None:
                assert covered.vd is not None
                self._copy_tree(covered, covered.vd, vd)
                # The tmpfs's root takes the covered directory's mode and
                # owner too, as under runc.
                st = covered.stat(None, STATX_BASIC_STATS)  # type: ignore[arg-type]
                self._set_owner_mode(
                    PathOperation(root=vd, start=vd, path=b".", follow=False), st
                )
        finally:
            if covered is not None:
                covered.dec_ref()
        if kind == "tmpfs" and dest == "/dev":
            self._populate_dev(vd)
        log.info("boot: %s mounted (%s)", dest, kind)

    def _mount_fs(
        self,
        dest: str,
        kind: str,
        source: str,
        flags: int,
        data: list[str],
        mode: int,
    ) -> VirtualDentry:
        rootfs.make_mount_point(
            self.vfs, self.creds, self.root, os.fsencode(dest), True
        )
        opts = GetFilesystemOptions(
            source=source,
            flags=flags,
            data=",".join(data),
            internal=TmpfsOptions(root_mode=mode) if kind == "tmpfs" else None,
        )
        mnt = self.vfs.mount_at(None, self.creds, self._pop(dest), kind, opts)
        return VirtualDentry(mnt, mnt.root)

    def _copy_tree(
        self, d: FileDescription, src: VirtualDentry, dst: VirtualDentry
    ) -> None:
        """Copies the directory open as d (at src) into dst: what tmpcopyup
        asks for, owners and modes kept."""
        names: list[bytes] = []

        def add(e: Dirent) -> bool:
            if e.name not in (b".", b".."):
                names.append(e.name)
            return True

        d.iterate_dirents(None, add)  # type: ignore[arg-type]
        creds = self.creds
        for name in names:
            at_src = PathOperation(root=src, start=src, path=name, follow=False)
            at_dst = PathOperation(root=dst, start=dst, path=name, follow=False)
            st = self.vfs.stat_at(None, creds, at_src, STATX_BASIC_STATS)
            kind = st.mode & S.S_IFMT
            perm = st.mode & ~S.S_IFMT
            if kind == S.S_IFDIR:
                self.vfs.mkdir_at(None, creds, at_dst, MkdirOptions(perm))
                sub = self.vfs.open_at(
                    None, creds, at_src, OpenOptions(F.O_RDONLY | F.O_DIRECTORY)
                )
                try:
                    child = self.vfs.get_dentry_at(
                        None, creds, at_dst, GetDentryOptions()
                    )
                    assert sub.vd is not None
                    self._copy_tree(sub, sub.vd, child)
                finally:
                    sub.dec_ref()
            elif kind == S.S_IFLNK:
                target = self.vfs.readlink_at(None, creds, at_src)
                self.vfs.symlink_at(None, creds, at_dst, target)
            elif kind == S.S_IFREG:
                self._copy_file(at_src, at_dst, perm)
            else:
                self.vfs.mknod_at(
                    None,
                    creds,
                    at_dst,
                    MknodOptions(st.mode, st.rdev_major, st.rdev_minor),
                )
            if kind != S.S_IFLNK:
                self._set_owner_mode(at_dst, st)

    def _set_owner_mode(self, pop: PathOperation, st: Statx) -> None:
        self.vfs.setstat_at(
            None,
            self.creds,
            pop,
            SetStatOptions(
                mask=STATX_MODE | STATX_UID | STATX_GID,
                mode=st.mode & ~S.S_IFMT,
                uid=st.uid,
                gid=st.gid,
            ),
        )

    def _copy_file(self, src: PathOperation, dst: PathOperation, perm: int) -> None:
        fin = self.vfs.open_at(None, self.creds, src, OpenOptions(F.O_RDONLY))
        try:
            fout = self.vfs.open_at(
                None,
                self.creds,
                dst,
                OpenOptions(F.O_WRONLY | F.O_CREAT | F.O_EXCL, perm),
            )
            try:
                while data := fin.read(None, 1 << 16):  # type: ignore[arg-type]
                    fout.write(None, data)  # type: ignore[arg-type]
            finally:
                fout.dec_ref()
        finally:
            fin.dec_ref()

    # Masked and read-only paths.

    def _null_device(self) -> VirtualDentry:
        """Returns a null device node on an internal tmpfs: the source of
        file masks (bound read-only)."""
        if self._null is None:
            fs, root = self.vfs.new_filesystem(
                self.creds,
                "tmpfs",
                GetFilesystemOptions(
                    source="none", internal=TmpfsOptions(root_mode=0o755)
                ),
            )
            mnt = self.vfs.new_disconnected_mount(fs, root)
            top = VirtualDentry(mnt, root)
            pop = PathOperation(root=top, start=top, path=b"null", follow=False)
            self.vfs.mknod_at(
                None, self.creds, pop, MknodOptions(S.S_IFCHR | 0o666, *_NULL)
            )
            self._null = self.vfs.get_dentry_at(
                None, self.creds, pop, GetDentryOptions()
            )
        return self._null

    def mask(self, paths: Sequence[str]) -> None:
        """Masks paths (linux.maskedPaths).

        Raises:
            MountError: a path exists but cannot be masked.
        """
        for p in paths:
            path = _norm(p)
            vd = self._lookup(path)
            if vd is None:
                continue
            try:
                if vd.dentry.is_dir():
                    mask = self._mount_fs(
                        path, "tmpfs", "tmpfs", MS.MS_RDONLY, [], 0o755
                    ).mount
                else:
                    mask = self.vfs.bind_at(
                        None,
                        self.creds,
                        self._null_device(),
                        self._pop(path),
                        recursive=False,
                        flags=MS.MS_RDONLY,
                    )
            except SyscallError as e:
                raise MountError(f"masking {path}: {e}") from None
            self._check_covered(path, mask, "masked")
            log.info("boot: %s masked", path)

    def _check_covered(self, path: str, mnt: Mount, what: str) -> None:
        """Fails unless path now resolves into mnt: a filesystem that made
        a new dentry for each lookup would lose the mount point, and the
        path would show through (fail closed)."""
        vd = self._lookup(path)
        if vd is None or vd.mount is not mnt:
            raise MountError(
                f"{path} could not be {what}: its filesystem does not keep the "
                "mount point"
            )

    def make_read_only(self, paths: Sequence[str]) -> None:
        """Makes paths read-only (linux.readonlyPaths): each is bound onto
        itself, with what is mounted below it, read-only.

        Raises:
            MountError: a path exists but cannot be made read-only.
        """
        for p in paths:
            path = _norm(p)
            vd = self._lookup(path)
            if vd is None:
                continue
            try:
                mnt = self.vfs.bind_at(
                    None,
                    self.creds,
                    vd,
                    self._pop(path),
                    recursive=True,
                    flags=MS.MS_RDONLY,
                )
            except SyscallError as e:
                raise MountError(f"making {path} read-only: {e}") from None
            self._check_covered(path, mnt, "made read-only")
            log.info("boot: %s read-only", path)
