"""ResolvingPath: the state of one path resolution, shared by the VFS and
the filesystem it is currently in.

A path is split into components once. The VFS creates a ResolvingPath
positioned at the start (the root for an absolute path, the working
directory or dirfd otherwise) and calls the filesystem of the current mount.
The filesystem consumes components; when the walk must leave the mount, a
method of the ResolvingPath raises a ResolveRedirect that unwinds the
filesystem's code (releasing its locks), and the VFS moves the resolution to
the other mount and calls that filesystem with the components that remain:

- rp.check_mount(d): d has a mount on it -> continue at that mount's root;
- rp.check_root(d) before `..`: at the task's root `..` stays put (returns
  True); at the root of the current mount -> continue at the mount point in
  the parent mount, where `..` is applied again;
- rp.handle_dots(d, parent): `.` and `..` as every filesystem resolves
  them, through check_root and check_mount;
- rp.handle_symlink(target): counts the link (ELOOP past MAXSYMLINKS) and
  splices the target's components in place of the link's; an absolute
  target -> continue at the root;
- rp.handle_jump(vd): a "magic link" of /proc -> continue at vd.

openat2's RESOLVE_* flags are enforced here, in the one place every crossing
passes through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import mount as MS
from pkg.abi.linux.fs import MAXSYMLINKS
from pkg.errors.syscall_error import SyscallError

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.dentry import Dentry, VirtualDentry
    from pkg.sentry.vfs.mount import Mount
    from pkg.sentry.vfs.vfs import VirtualFilesystem

# A filesystem's own kind of Dentry.
_D = TypeVar("_D", bound="Dentry")


@dataclass(frozen=True, slots=True)
class PathOperation:
    """PathOperation names a file: a path relative to start, with root as
    "/" (the task's root, or the dirfd for RESOLVE_IN_ROOT).

    Attributes:
        root: where "/" and `..` stop.
        start: where a relative path starts (working directory or dirfd).
        path: the path as the application gave it.
        follow: whether a symbolic link in the last component is followed.
        resolve: openat2 RESOLVE_* flags.
    """

    root: VirtualDentry
    start: VirtualDentry
    path: bytes
    follow: bool = True
    resolve: int = 0


class ResolveRedirect(Exception):
    """ResolveRedirect tells the VFS to continue resolution elsewhere. It is
    raised by ResolvingPath methods and must propagate out of filesystem
    code untouched."""


class _MountRoot(ResolveRedirect):
    """`..` at the root of the current mount."""


class _MountPoint(ResolveRedirect):
    """The walk reached a dentry with mount on it."""

    def __init__(self, mount: Mount) -> None:
        super().__init__()
        self.mount = mount


class _AbsoluteSymlink(ResolveRedirect):
    """A symbolic link's target is absolute."""


class _Jump(ResolveRedirect):
    """A magic link jumps to a VirtualDentry."""

    def __init__(self, vd: VirtualDentry) -> None:
        super().__init__()
        self.vd = vd


def split_path(path: bytes) -> tuple[list[bytes], bool, bool]:
    """Returns (components, absolute, trailing slash) of a path."""
    comps = [c for c in path.split(b"/") if c]
    absolute = path.startswith(b"/")
    trailing = bool(comps) and path.endswith(b"/")
    return comps, absolute, trailing


class ResolvingPath:
    """ResolvingPath is one path resolution in progress.

    Attributes:
        vfs: the VirtualFilesystem.
        creds: the credentials permission checks use.
        task: the task resolving, or None inside the sentry. Operations that
            block (opening a FIFO) need it.
        root: the resolution's root.
        mount: the mount the walk is in.
        start: the dentry of mount where the remaining components start.
    """

    __slots__ = (
        "_comps",
        "_follow",
        "_must_be_dir",
        "_pos",
        "_resolve",
        "_symlinks",
        "creds",
        "mount",
        "root",
        "start",
        "task",
        "vfs",
    )

    def __init__(
        self,
        vfs: VirtualFilesystem,
        creds: Credentials,
        task: Task | None,
        pop: PathOperation,
    ) -> None:
        self.vfs = vfs
        self.creds = creds
        self.task = task
        self._resolve = pop.resolve
        self._follow = pop.follow
        self._symlinks = 0
        self._pos = 0
        comps, absolute, trailing = split_path(pop.path)
        self._comps = comps
        self._must_be_dir = trailing
        root = pop.root
        if pop.resolve & F.RESOLVE_IN_ROOT:
            root = pop.start
        self.root = root
        if absolute:
            if pop.resolve & F.RESOLVE_BENEATH:
                raise SyscallError(errno.EXDEV)
            self.mount = root.mount
            self.start = root.dentry
        else:
            self.mount = pop.start.mount
            self.start = pop.start.dentry
        if pop.resolve & F.RESOLVE_BENEATH:
            # `..` must not climb above the start: treat it as the root for
            # `..`, and fail instead of staying put there.
            self.root = pop.start

    # Components.

    def component(self) -> bytes:
        """Returns the component to resolve next. Precondition: not done()."""
        return self._comps[self._pos]

    def advance(self) -> None:
        """Moves past the current component."""
        self._pos += 1

    def done(self) -> bool:
        """Reports whether every component has been resolved."""
        return self._pos >= len(self._comps)

    def final(self) -> bool:
        """Reports whether the current component is the last one."""
        return self._pos == len(self._comps) - 1

    def remaining(self) -> list[bytes]:
        """Returns the unresolved components (for diagnostics)."""
        return self._comps[self._pos :]

    def must_be_dir(self) -> bool:
        """Reports whether the file named must be a directory (the path
        ends with a slash)."""
        return self._must_be_dir

    def should_follow_symlink(self) -> bool:
        """Reports whether a symbolic link at the current component is to be
        followed: always before the last component; for the last one, if the
        operation follows links or the path ends with a slash."""
        return not self.final() or self._follow or self._must_be_dir

    @property
    def resolve_flags(self) -> int:
        """openat2's RESOLVE_* flags for this resolution."""
        return self._resolve

    # Crossings. Each may raise ResolveRedirect.

    def check_root(self, d: Dentry) -> bool:
        """Must be called before resolving `..` from d.

        Returns:
            True if d is the resolution's root, where `..` stays at d.

        Raises:
            ResolveRedirect: d is the root of the current mount.
            SyscallError: EXDEV at the root with RESOLVE_BENEATH.
        """
        if d is self.root.dentry and self.mount is self.root.mount:
            if self._resolve & F.RESOLVE_BENEATH:
                raise SyscallError(errno.EXDEV)
            return True
        if d is self.mount.root:
            raise _MountRoot()
        return False

    def handle_dots(self, d: _D, parent: _D | None) -> _D | None:
        """handle_dots resolves the current component if it is "." or "..",
        as handle_dots in fs/namei.c does, and moves past it.

        Args:
            d: the directory the component is resolved from.
            parent: d's parent in its filesystem (None at its root).

        Returns:
            The dentry reached (d for ".", and for ".." at the resolution's
            root or the filesystem's), or None for any other name, which the
            filesystem looks up.

        Raises:
            ResolveRedirect: `..` leaves the current mount, or reaches a
                dentry that a mount sits on.
            SyscallError: EXDEV as check_root and check_mount say.
        """
        name = self.component()
        if name == b".":
            self.advance()
            return d
        if name != b"..":
            return None
        if self.check_root(d) or parent is None:
            self.advance()
            return d
        self.check_mount(parent)
        self.advance()
        return parent

    def check_mount(self, d: Dentry) -> None:
        """Must be called on each dentry the walk reaches by name (and on
        the parent reached by `..`).

        Raises:
            ResolveRedirect: a mount sits on d.
            SyscallError: EXDEV with RESOLVE_NO_XDEV.
        """
        if not d.is_mountpoint():
            return
        child = self.vfs.get_mount_at(self.mount, d)
        if child is None:
            return
        if self._resolve & F.RESOLVE_NO_XDEV:
            raise SyscallError(errno.EXDEV)
        raise _MountPoint(child)

    def handle_symlink(self, target: bytes) -> None:
        """Follows a symbolic link found at the current component, which the
        caller is to resolve again from the link's directory (the components
        of target replace the link's).

        Raises:
            ResolveRedirect: target is absolute.
            SyscallError: ELOOP past MAXSYMLINKS links or with
                RESOLVE_NO_SYMLINKS or a nosymfollow mount, ENOENT for an
                empty target, EXDEV for an absolute target under
                RESOLVE_BENEATH.
        """
        self._count_link()
        if self._resolve & F.RESOLVE_NO_SYMLINKS:
            raise SyscallError(errno.ELOOP)
        if self.mount.flags & MS.MS_NOSYMFOLLOW:
            raise SyscallError(errno.ELOOP)
        if not target:
            raise SyscallError(errno.ENOENT)
        comps, absolute, trailing = split_path(target)
        if self.final() and trailing:
            self._must_be_dir = True
        self._comps[self._pos : self._pos + 1] = comps
        if absolute:
            if self._resolve & F.RESOLVE_BENEATH:
                raise SyscallError(errno.EXDEV)
            raise _AbsoluteSymlink()

    def handle_jump(self, vd: VirtualDentry) -> None:
        """Follows a magic link (a /proc/pid/fd entry) at the current
        component to vd.

        Raises:
            ResolveRedirect: always, unless an error is raised.
            SyscallError: ELOOP past MAXSYMLINKS links or with
                RESOLVE_NO_MAGICLINKS or RESOLVE_NO_SYMLINKS, EXDEV under
                RESOLVE_BENEATH or RESOLVE_IN_ROOT.
        """
        self._count_link()
        if self._resolve & (F.RESOLVE_NO_MAGICLINKS | F.RESOLVE_NO_SYMLINKS):
            raise SyscallError(errno.ELOOP)
        if self._resolve & (F.RESOLVE_BENEATH | F.RESOLVE_IN_ROOT):
            raise SyscallError(errno.EXDEV)
        del self._comps[self._pos]
        raise _Jump(vd)

    def _count_link(self) -> None:
        self._symlinks += 1
        if self._symlinks > MAXSYMLINKS:
            raise SyscallError(errno.ELOOP)

    # Used by the VFS.

    def redirect(self, e: ResolveRedirect) -> None:
        """Moves the resolution as e asks (VirtualFilesystem only)."""
        if isinstance(e, _MountPoint):
            self.mount = e.mount
            self.start = e.mount.root
            self.advance()
            self._descend_stacked()
        elif isinstance(e, _MountRoot):
            m = self.mount
            if m.parent is None or m.point is None:
                # The root of a namespace or of a detached mount: `..`
                # stays.
                self.start = m.root
                self.advance()
                return
            if self._resolve & F.RESOLVE_NO_XDEV:
                raise SyscallError(errno.EXDEV)
            # Apply `..` again from the mount point.
            self.mount = m.parent
            self.start = m.point
        elif isinstance(e, _AbsoluteSymlink):
            self.mount = self.root.mount
            self.start = self.root.dentry
        elif isinstance(e, _Jump):
            self.mount = e.vd.mount
            self.start = e.vd.dentry
        else:
            raise AssertionError(f"unknown redirect {e!r}")

    def _descend_stacked(self) -> None:
        """Moves to the top of a stack of mounts on the current root."""
        while True:
            child = self.vfs.get_mount_at(self.mount, self.start)
            if child is None:
                return
            self.mount = child
            self.start = child.root
