"""Tests of path resolution, mounts and the VFS operations, on tmpfs."""

from __future__ import annotations

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import mount as MS
from pkg.abi.linux import stat as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.tmpfs.tmpfs import TmpfsType
from pkg.sentry.kernel.credentials import root_credentials
from pkg.sentry.pgalloc.memory_file import MemoryFile
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.filesystem import (
    GetFilesystemOptions,
    RegisterFilesystemTypeOptions,
)
from pkg.sentry.vfs.options import (
    GetDentryOptions,
    MkdirOptions,
    OpenOptions,
    RenameOptions,
)
from pkg.sentry.vfs.resolving_path import PathOperation
from pkg.sentry.vfs.vfs import VirtualFilesystem

CREDS = root_credentials()


class Env:
    """A VFS with a tmpfs root, and helpers taking paths."""

    def __init__(self) -> None:
        self.mf = MemoryFile(size=1 << 28)
        self.vfs = VirtualFilesystem()
        self.vfs.register_filesystem_type(
            "tmpfs",
            TmpfsType(self.mf),
            RegisterFilesystemTypeOptions(allow_user_mount=True),
        )
        self.ns = self.vfs.new_mount_namespace(CREDS, "tmpfs", GetFilesystemOptions())
        self.root = VirtualDentry(self.ns.root, self.ns.root.root)

    def pop(
        self,
        path: bytes,
        follow: bool = True,
        start: VirtualDentry | None = None,
        resolve: int = 0,
    ) -> PathOperation:
        return PathOperation(self.root, start or self.root, path, follow, resolve)

    def mkdir(self, path: bytes) -> None:
        self.vfs.mkdir_at(None, CREDS, self.pop(path), MkdirOptions(0o755))

    def write(self, path: bytes, data: bytes) -> None:
        f = self.vfs.open_at(
            None, CREDS, self.pop(path), OpenOptions(F.O_CREAT | F.O_WRONLY, 0o644)
        )
        try:
            f.write(None, data)  # type: ignore[arg-type]
        finally:
            f.dec_ref()

    def read(self, path: bytes, **kw: object) -> bytes:
        f = self.vfs.open_at(None, CREDS, self.pop(path, **kw), OpenOptions(F.O_RDONLY))
        try:
            return f.read(None, 1 << 20)  # type: ignore[arg-type]
        finally:
            f.dec_ref()

    def symlink(self, path: bytes, target: bytes) -> None:
        self.vfs.symlink_at(None, CREDS, self.pop(path), target)

    def get(self, path: bytes, **kw: object) -> VirtualDentry:
        return self.vfs.get_dentry_at(
            None, CREDS, self.pop(path, **kw), GetDentryOptions()
        )

    def mount_tmpfs(self, path: bytes, flags: int = 0) -> None:
        self.vfs.mount_at(
            None, CREDS, self.pop(path), "tmpfs", GetFilesystemOptions(flags=flags)
        )

    def ino(self, path: bytes) -> int:
        return self.vfs.stat_at(None, CREDS, self.pop(path), 0).ino


@pytest.fixture
def env() -> Env:
    return Env()


def _errno(fn: object, *args: object, **kw: object) -> int:
    with pytest.raises(SyscallError) as e:
        fn(*args, **kw)  # type: ignore[operator]
    return e.value.errno


def test_walk_and_dotdot(env: Env) -> None:
    env.mkdir(b"/a")
    env.mkdir(b"/a/b")
    env.write(b"/a/b/f", b"data")
    assert env.read(b"/a/./b/../b/f") == b"data"
    assert env.read(b"/../../a/b/f") == b"data"
    assert env.read(b"a//b///f") == b"data"
    assert _errno(env.read, b"/a/b/f/") == errno.ENOTDIR
    assert _errno(env.read, b"/a/nope") == errno.ENOENT
    assert _errno(env.read, b"/a/b/f/x") == errno.ENOTDIR


def test_symlinks(env: Env) -> None:
    env.mkdir(b"/d")
    env.write(b"/d/f", b"x")
    env.symlink(b"/rel", b"d/f")
    env.symlink(b"/abs", b"/d/f")
    env.symlink(b"/d/up", b"../d")
    assert env.read(b"/rel") == b"x"
    assert env.read(b"/abs") == b"x"
    assert env.read(b"/d/up/up/up/f") == b"x"
    # The last component is not followed on request.
    vd = env.get(b"/rel", follow=False)
    st = env.vfs.stat_vd(None, CREDS, vd, 0)
    assert S.S_ISLNK(st.mode)
    env.symlink(b"/loop", b"/loop")
    assert _errno(env.read, b"/loop") == errno.ELOOP
    env.symlink(b"/empty_target_dangling", b"/nowhere")
    assert _errno(env.read, b"/empty_target_dangling") == errno.ENOENT


def test_symlink_limit(env: Env) -> None:
    env.write(b"/f", b"ok")
    prev = b"/f"
    for i in range(41):
        name = b"/l%d" % i
        env.symlink(name, prev)
        prev = name
    assert env.read(b"/l39") == b"ok"  # 40 links
    assert _errno(env.read, b"/l40") == errno.ELOOP  # 41 links


def test_mounts_are_crossed_both_ways(env: Env) -> None:
    env.mkdir(b"/m")
    env.write(b"/m/under", b"u")
    env.write(b"/beside", b"b")
    env.mount_tmpfs(b"/m")
    assert _errno(env.read, b"/m/under") == errno.ENOENT
    env.write(b"/m/over", b"o")
    assert env.read(b"/m/../beside") == b"b"
    assert env.read(b"/m/../m/over") == b"o"
    vd = env.get(b"/m")
    assert vd.mount is not env.root.mount
    assert vd.dentry is vd.mount.root
    # Through a symlink inside the mount that climbs out of it.
    env.symlink(b"/m/out", b"../beside")
    assert env.read(b"/m/out") == b"b"
    assert env.vfs.path_name(env.root, env.get(b"/m/over")) == (b"/m/over", True)


def test_umount_busy_and_detach(env: Env) -> None:
    env.mkdir(b"/m")
    env.mount_tmpfs(b"/m")
    env.write(b"/m/f", b"x")
    f = env.vfs.open_at(None, CREDS, env.pop(b"/m/f"), OpenOptions(F.O_RDONLY))
    ns = env.ns
    assert _errno(env.vfs.umount_at, None, CREDS, env.pop(b"/m"), 0, ns) == errno.EBUSY
    env.vfs.umount_at(None, CREDS, env.pop(b"/m"), MS.MNT_DETACH, ns)
    assert _errno(env.read, b"/m/f") == errno.ENOENT
    assert f.read(None, 10) == b"x"  # type: ignore[arg-type]
    f.dec_ref()
    assert _errno(env.vfs.umount_at, None, CREDS, env.pop(b"/m"), 0, ns) == errno.EINVAL


def test_bind_mount_and_exdev(env: Env) -> None:
    env.mkdir(b"/src")
    env.mkdir(b"/dst")
    env.write(b"/src/f", b"s")
    src = env.get(b"/src")
    env.vfs.bind_at(None, CREDS, src, env.pop(b"/dst"), recursive=False)
    assert env.read(b"/dst/f") == b"s"
    assert env.ino(b"/dst/f") == env.ino(b"/src/f")
    assert (
        _errno(
            env.vfs.rename_at,
            None,
            CREDS,
            env.pop(b"/src/f"),
            env.pop(b"/dst/g"),
            RenameOptions(),
        )
        == errno.EXDEV
    )


def test_read_only_mount(env: Env) -> None:
    env.mkdir(b"/m")
    env.mount_tmpfs(b"/m", MS.MS_RDONLY)
    assert _errno(env.write, b"/m/f", b"") == errno.EROFS
    assert _errno(env.mkdir, b"/m") == errno.EEXIST
    assert _errno(env.mkdir, b"/m/d") == errno.EROFS


def test_resolve_flags(env: Env) -> None:
    env.mkdir(b"/jail")
    env.write(b"/jail/in", b"i")
    env.write(b"/out", b"o")
    env.symlink(b"/jail/abs", b"/in")
    jail = env.get(b"/jail")

    def read(path: bytes, resolve: int) -> bytes:
        f = env.vfs.open_at(
            None,
            CREDS,
            env.pop(path, start=jail, resolve=resolve),
            OpenOptions(F.O_RDONLY),
        )
        try:
            return f.read(None, 10)  # type: ignore[arg-type]
        finally:
            f.dec_ref()

    assert read(b"abs", F.RESOLVE_IN_ROOT) == b"i"
    assert read(b"../../in", F.RESOLVE_IN_ROOT) == b"i"
    assert _errno(read, b"../out", F.RESOLVE_BENEATH) == errno.EXDEV
    assert _errno(read, b"abs", F.RESOLVE_BENEATH) == errno.EXDEV
    assert _errno(read, b"abs", F.RESOLVE_NO_SYMLINKS) == errno.ELOOP
    assert read(b"in", F.RESOLVE_BENEATH) == b"i"


def test_path_name_of_deleted_and_unreachable(env: Env) -> None:
    env.mkdir(b"/d")
    env.write(b"/d/f", b"")
    f = env.vfs.open_at(None, CREDS, env.pop(b"/d/f"), OpenOptions(F.O_RDONLY))
    env.vfs.unlink_at(None, CREDS, env.pop(b"/d/f"))
    assert f.vd is not None
    assert env.vfs.path_for_display(f.vd) == b"/d/f (deleted)"
    f.dec_ref()
    d = env.get(b"/d")
    assert env.vfs.path_name(d, env.root) == (b"/", False)


def test_rename_replaces_and_keeps_inode(env: Env) -> None:
    env.write(b"/a", b"A")
    env.write(b"/b", b"B")
    ino = env.ino(b"/a")
    env.vfs.rename_at(None, CREDS, env.pop(b"/a"), env.pop(b"/b"), RenameOptions())
    assert env.ino(b"/b") == ino
    assert env.read(b"/b") == b"A"
    assert _errno(env.read, b"/a") == errno.ENOENT


def test_unmounted_tmpfs_frees_its_pages(env: Env) -> None:
    env.mkdir(b"/m")
    before = env.mf.allocated
    env.mount_tmpfs(b"/m")
    env.write(b"/m/f", b"x" * 100000)
    assert env.mf.allocated > before
    env.vfs.umount_at(None, CREDS, env.pop(b"/m"), 0, env.ns)
    assert env.mf.allocated == before
