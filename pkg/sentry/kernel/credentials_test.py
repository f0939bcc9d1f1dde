"""Tests of the credential rules against what Linux does (kernel/sys.c,
security/commoncap.c)."""

import pytest

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel import credentials as C

ROOT = C.root_credentials()
NOBODY = 65534


def test_setuid_as_root_sets_every_uid_and_drops_capabilities() -> None:
    c = C.setuid(ROOT, NOBODY)
    assert (c.ruid, c.euid, c.suid, c.fsuid) == (NOBODY,) * 4
    assert c.permitted == c.effective == 0


def test_setuid_unprivileged_only_to_real_or_saved() -> None:
    c = C.setresuid(ROOT, NOBODY, NOBODY, 1000)
    assert c.permitted == 0
    c = C.setuid(c, 1000)
    assert (c.ruid, c.euid, c.suid) == (NOBODY, 1000, 1000)
    with pytest.raises(SyscallError) as e:
        C.setuid(c, 0)
    assert e.value.errno == errno.EPERM


def test_setuid_minus_one_is_einval() -> None:
    with pytest.raises(SyscallError) as e:
        C.setuid(ROOT, C.NO_ID)
    assert e.value.errno == errno.EINVAL


def test_keep_caps_keeps_permitted_but_not_effective() -> None:
    c = C.setresuid(ROOT.with_changes(keep_caps=True), NOBODY, NOBODY, NOBODY)
    assert c.permitted == C.ALL_CAPS
    assert c.effective == 0


def test_effective_root_through_saved_uid_restores_effective() -> None:
    c = C.setresuid(ROOT, NOBODY, NOBODY, 0)
    assert c.effective == 0 and c.permitted == C.ALL_CAPS
    c = C.setreuid(c, C.NO_ID, 0)
    assert c.effective == C.ALL_CAPS


def test_setreuid_saved_follows_effective_when_real_changes() -> None:
    c = C.setreuid(ROOT, NOBODY, 1000)
    assert (c.ruid, c.euid, c.suid) == (NOBODY, 1000, 1000)


def test_fsuid_change_drops_and_raises_fs_capabilities() -> None:
    c, old = C.setfsuid(ROOT, NOBODY)
    assert old == 0
    assert c.effective == C.ALL_CAPS & ~C.CAP_FS_MASK
    c, old = C.setfsuid(c, 0)
    assert old == NOBODY
    assert c.effective == C.ALL_CAPS


def test_capset_rules() -> None:
    c = C.capset(ROOT, 0, C.ALL_CAPS & ~1, 0)
    assert c.permitted == C.ALL_CAPS & ~1
    with pytest.raises(SyscallError):
        C.capset(c, 0, C.ALL_CAPS, 0)
    with pytest.raises(SyscallError):
        C.capset(c, 1, c.permitted, 0)


def test_exec_as_root_gets_bounding_set() -> None:
    new, secure, _ = C.exec_credentials(
        ROOT.with_changes(permitted=0, effective=0), False
    )
    assert new.permitted == C.ALL_CAPS
    assert new.effective == C.ALL_CAPS
    assert not secure


def test_exec_nonroot_keeps_only_ambient() -> None:
    bit = 1 << C.CAP_NET_BIND_SERVICE
    c = C.Credentials(
        ruid=NOBODY, euid=NOBODY, suid=NOBODY, fsuid=NOBODY,
        permitted=bit, effective=0, inheritable=bit, ambient=bit,
    )  # fmt: skip
    new, secure, _ = C.exec_credentials(c, False)
    assert (new.permitted, new.effective, new.ambient) == (bit, bit, bit)
    assert not secure


def test_exec_with_euid_not_ruid_is_secure_and_drops_ambient() -> None:
    c = C.setresuid(ROOT, NOBODY, 0, NOBODY)
    new, secure, _ = C.exec_credentials(c, False)
    assert secure
    assert new.suid == 0
    assert new.ambient == 0


def test_exec_no_new_privs_reverts_euid() -> None:
    c = C.setresuid(ROOT, NOBODY, 0, 0).with_changes(no_new_privs=True)
    new, secure, _ = C.exec_credentials(c, True)
    assert new.euid == NOBODY
    # The exec asked for more than it got: still a "secure" one.
    assert secure
