"""Tests of mount namespace copies and mount propagation, on tmpfs."""

from __future__ import annotations

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import mount as MS
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.tmpfs.tmpfs import TmpfsType
from pkg.sentry.kernel.credentials import root_credentials
from pkg.sentry.pgalloc.memory_file import MemoryFile
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.filesystem import (
    GetFilesystemOptions,
    RegisterFilesystemTypeOptions,
)
from pkg.sentry.vfs.mount import Mount, MountNamespace
from pkg.sentry.vfs.nsfs import INIT_MNT_NS_INO
from pkg.sentry.vfs.options import GetDentryOptions, MkdirOptions
from pkg.sentry.vfs.resolving_path import PathOperation
from pkg.sentry.vfs.vfs import VirtualFilesystem

CREDS = root_credentials()


class View:
    """A mount namespace, with helpers taking paths from its root."""

    def __init__(self, vfs: VirtualFilesystem, ns: MountNamespace) -> None:
        self.vfs = vfs
        self.ns = ns

    def pop(self, path: bytes) -> PathOperation:
        root = VirtualDentry(self.ns.root, self.ns.root.root)
        return PathOperation(root, root, path, True, 0)

    def get(self, path: bytes) -> VirtualDentry:
        return self.vfs.get_dentry_at(None, CREDS, self.pop(path), GetDentryOptions())

    def mount(self, path: bytes) -> Mount:
        return self.vfs.mount_at(
            None, CREDS, self.pop(path), "tmpfs", GetFilesystemOptions()
        )

    def mkdir(self, path: bytes) -> None:
        self.vfs.mkdir_at(None, CREDS, self.pop(path), MkdirOptions(0o755))

    def exists(self, path: bytes) -> bool:
        try:
            self.get(path)
        except SyscallError:
            return False
        return True

    def set_type(self, path: bytes, flags: int) -> None:
        self.vfs.change_propagation(None, self.get(path), flags)

    def umount(self, path: bytes, flags: int = 0) -> None:
        self.vfs.umount_at(None, CREDS, self.pop(path), flags, self.ns)

    def copy(self) -> View:
        ns, _ = self.vfs.copy_mount_namespace(self.ns)
        ns.inc_ref()
        return View(self.vfs, ns)


@pytest.fixture
def mf() -> MemoryFile:
    return MemoryFile(size=1 << 28)


@pytest.fixture
def a(mf: MemoryFile) -> View:
    vfs = VirtualFilesystem()
    vfs.register_filesystem_type(
        "tmpfs", TmpfsType(mf), RegisterFilesystemTypeOptions(allow_user_mount=True)
    )
    view = View(vfs, vfs.new_mount_namespace(CREDS, "tmpfs", GetFilesystemOptions()))
    view.mkdir(b"/m")
    view.mount(b"/m")
    for d in (b"/m/x", b"/m/y", b"/m/z"):
        view.mkdir(d)
    return view


def test_copy_has_its_own_mounts_and_inode(a: View) -> None:
    b = a.copy()
    assert a.ns.ino == INIT_MNT_NS_INO
    assert b.ns.ino != a.ns.ino
    assert b.get(b"/m").mount is not a.get(b"/m").mount
    b.mount(b"/m/x")
    assert b.get(b"/m/x").mount is not b.get(b"/m").mount
    assert a.get(b"/m/x").mount is a.get(b"/m").mount
    b.umount(b"/m/x")
    b.umount(b"/m")
    assert a.exists(b"/m/y")
    assert not b.exists(b"/m/y")


def test_peers_propagate_mounts_and_unmounts(a: View) -> None:
    a.set_type(b"/m", MS.MS_SHARED)
    b = a.copy()
    assert b.get(b"/m").mount.group is a.get(b"/m").mount.group
    a.mount(b"/m/x")
    a.mkdir(b"/m/x/new")
    assert b.exists(b"/m/x/new")
    # The copy is shared as well, in a group of the new mounts.
    assert b.get(b"/m/x").mount.group is a.get(b"/m/x").mount.group
    b.umount(b"/m/x")
    assert not a.exists(b"/m/x/new")


def test_busy_propagated_mount_is_ebusy(a: View) -> None:
    a.set_type(b"/m", MS.MS_SHARED)
    b = a.copy()
    a.mount(b"/m/x")
    b.get(b"/m/x").mount.inc_ref()
    with pytest.raises(SyscallError) as e:
        a.umount(b"/m/x")
    assert e.value.errno == errno.EBUSY
    a.umount(b"/m/x", MS.MNT_DETACH)
    assert b.get(b"/m/x").mount is b.get(b"/m").mount


def test_slave_chain(a: View) -> None:
    # a shared; b a slave of it and shared itself; c a peer of b.
    a.set_type(b"/m", MS.MS_SHARED)
    b = a.copy()
    b.set_type(b"/m", MS.MS_SLAVE)
    b.set_type(b"/m", MS.MS_SHARED)
    c = b.copy()
    bm = b.get(b"/m").mount
    assert bm.master is a.get(b"/m").mount.group
    assert c.get(b"/m").mount.group is bm.group
    assert c.get(b"/m").mount.master is bm.master
    a.mount(b"/m/x")
    assert b.get(b"/m/x").mount is not bm and c.exists(b"/m/x")
    assert c.get(b"/m/x").mount.master is a.get(b"/m/x").mount.group
    # What c mounts reaches its peer b, not the master a.
    c.mount(b"/m/y")
    assert b.get(b"/m/y").mount is not bm
    assert a.get(b"/m/y").mount is a.get(b"/m").mount


def test_bind_of_a_shared_mount_is_a_peer(a: View) -> None:
    a.set_type(b"/m", MS.MS_SHARED)
    a.mkdir(b"/bound")
    src = a.get(b"/m")
    bound = a.vfs.bind_at(None, CREDS, src, a.pop(b"/bound"), recursive=False)
    assert bound.group is src.mount.group
    a.mount(b"/bound/z")
    a.mkdir(b"/bound/z/seen")
    assert a.exists(b"/m/z/seen")


def test_unbindable_and_make_slave_without_peers(a: View) -> None:
    a.set_type(b"/m", MS.MS_UNBINDABLE)
    a.mkdir(b"/bound")
    with pytest.raises(SyscallError) as e:
        a.vfs.bind_at(None, CREDS, a.get(b"/m"), a.pop(b"/bound"), recursive=False)
    assert e.value.errno == errno.EINVAL
    # MS_SLAVE of a mount without peers or master leaves it private.
    a.set_type(b"/m", MS.MS_SLAVE)
    m = a.get(b"/m").mount
    assert (m.group, m.master, m.unbindable) == (None, None, False)


def test_last_peer_hands_its_slaves_to_its_master(a: View) -> None:
    a.set_type(b"/m", MS.MS_SHARED)
    b = a.copy()
    b.set_type(b"/m", MS.MS_SLAVE)
    b.set_type(b"/m", MS.MS_SHARED)
    c = b.copy()
    c.set_type(b"/m", MS.MS_SLAVE)
    assert c.get(b"/m").mount.master is b.get(b"/m").mount.group
    # When b, the last member of c's master group, goes private, c moves up
    # to the group b received from.
    b.set_type(b"/m", MS.MS_PRIVATE)
    a_group = a.get(b"/m").mount.group
    assert a_group is not None
    assert c.get(b"/m").mount.master is a_group
    a.mount(b"/m/x")
    assert c.get(b"/m/x").mount is not c.get(b"/m").mount
    assert b.get(b"/m/x").mount is b.get(b"/m").mount


def test_group_ids_are_reused(a: View) -> None:
    a.set_type(b"/m", MS.MS_SHARED)
    first = a.get(b"/m").mount.group
    assert first is not None and first.id == 1
    a.set_type(b"/m", MS.MS_PRIVATE)
    a.set_type(b"/m", MS.MS_SHARED)
    again = a.get(b"/m").mount.group
    assert again is not None and again.id == 1


def test_release_unmounts_and_frees(a: View, mf: MemoryFile) -> None:
    before = mf.allocated
    b = a.copy()
    b.mount(b"/m/x")
    b.mkdir(b"/m/x/d")
    m = b.get(b"/m/x").mount
    assert mf.allocated >= before
    b.ns.dec_ref()
    assert m.umounted and m.parent is None
    assert not b.ns.try_inc_ref()
    # a is untouched.
    assert a.exists(b"/m/x")


def test_move_under_a_shared_mount_propagates(a: View) -> None:
    a.mkdir(b"/elsewhere")
    a.mount(b"/elsewhere")
    a.mkdir(b"/elsewhere/d")
    a.set_type(b"/m", MS.MS_SHARED)
    b = a.copy()
    a.vfs.move_mount(a.get(b"/elsewhere"), a.pop(b"/m/x"), None, CREDS)
    assert a.get(b"/m/x").mount.group is not None
    assert b.exists(b"/m/x/d")
    # A mount under a shared one cannot move.
    a.mkdir(b"/there")
    with pytest.raises(SyscallError) as e:
        a.vfs.move_mount(a.get(b"/m/x"), a.pop(b"/there"), None, CREDS)
    assert e.value.errno == errno.EINVAL


def test_detached_tree_takes_its_copies(a: View) -> None:
    a.set_type(b"/m", MS.MS_SHARED)
    b = a.copy()
    a.mount(b"/m/x")
    a.mkdir(b"/m/x/in")
    a.mount(b"/m/x/in")
    assert b.get(b"/m/x/in").mount is not b.get(b"/m/x").mount
    a.umount(b"/m/x", MS.MNT_DETACH)
    assert b.get(b"/m/x").mount is b.get(b"/m").mount
