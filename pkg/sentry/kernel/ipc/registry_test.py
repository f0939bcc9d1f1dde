"""Tests of the System V IPC id, key and permission rules (ipc/util.c)."""

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import ipc as I
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel import credentials as C
from pkg.sentry.kernel.ipc.registry import IPCObject, Perm, Registry

ROOT = C.root_credentials()
USER = C.setresuid(ROOT, 1000, 1000, 1000).with_changes(
    egid=1000, fsgid=1000, groups=()
)
OTHER = C.setresuid(ROOT, 2000, 2000, 2000).with_changes(
    egid=2000, fsgid=2000, groups=()
)


def _get(r: Registry, creds: C.Credentials, key: int, flags: int) -> IPCObject:
    with r.mu:
        return r.get_locked(creds, key, flags, IPCObject)


def test_ids_are_cyclic_and_stale_ids_stay_invalid() -> None:
    r: Registry[IPCObject] = Registry(16)
    a = _get(r, ROOT, I.IPC_PRIVATE, I.IPC_CREAT)
    b = _get(r, ROOT, I.IPC_PRIVATE, I.IPC_CREAT)
    assert (a.perm.id, b.perm.id) == (0, 1)
    with r.mu:
        r.remove_locked(a)
        with pytest.raises(SyscallError):
            r.find_locked(0)
    # The next slot, not the freed one.
    c = _get(r, ROOT, I.IPC_PRIVATE, I.IPC_CREAT)
    assert c.perm.id == 2
    with r.mu:
        assert r.find_locked(2) is c
        assert r.find_index_locked(2) is c
        assert r.max_index_locked() == 2


def test_keys() -> None:
    r: Registry[IPCObject] = Registry(16)
    with pytest.raises(SyscallError) as e:
        _get(r, ROOT, 42, 0)
    assert e.value.errno == errno.ENOENT
    a = _get(r, ROOT, 42, I.IPC_CREAT | 0o600)
    assert _get(r, ROOT, 42, 0) is a
    assert _get(r, ROOT, 42, I.IPC_CREAT) is a
    with pytest.raises(SyscallError) as e:
        _get(r, ROOT, 42, I.IPC_CREAT | I.IPC_EXCL)
    assert e.value.errno == errno.EEXIST
    # IPC_PRIVATE always makes a new object.
    assert _get(r, ROOT, I.IPC_PRIVATE, 0) is not _get(r, ROOT, I.IPC_PRIVATE, 0)


def test_limit() -> None:
    r: Registry[IPCObject] = Registry(1)
    _get(r, ROOT, I.IPC_PRIVATE, 0)
    with pytest.raises(SyscallError) as e:
        _get(r, ROOT, I.IPC_PRIVATE, 0)
    assert e.value.errno == errno.ENOSPC


def test_permissions_by_class() -> None:
    p = Perm(key=1, uid=1000, gid=1000, cuid=1000, cgid=1000, mode=0o640)
    assert p.check(USER, 0o600)
    assert not p.check(OTHER, 0o400)
    assert p.check(OTHER, 0)
    # CAP_IPC_OWNER overrides.
    assert p.check(ROOT, 0o666)
    p.check_owner(USER)
    with pytest.raises(SyscallError) as e:
        p.check_owner(OTHER)
    assert e.value.errno == errno.EPERM


def test_set_keeps_flags() -> None:
    p = Perm(key=1, uid=0, gid=0, cuid=0, cgid=0, mode=0o600 | I.SHM_DEST)
    p.set(5, 6, 0o7644)
    assert (p.uid, p.gid, p.mode) == (5, 6, 0o644 | I.SHM_DEST)
