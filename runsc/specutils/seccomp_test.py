"""Tests of compiling OCI seccomp profiles, by running the programs in the
sentry's own seccomp interpreter."""

from __future__ import annotations

import errno
import json
import os
import struct

import pytest

from pkg.abi.linux import seccomp as SC
from pkg.abi.linux import sysno as N
from pkg.sentry.kernel import seccomp as interp
from runsc.specutils import seccomp

ALLOW = SC.SECCOMP_RET_ALLOW


def run(prog: seccomp.Program, nr: int, *args: int, arch: int = 0) -> int:
    insns = interp.compile_filter(prog.bpf)
    args6 = tuple(args) + (0,) * (6 - len(args))
    raw = struct.pack("<iIQ6Q", nr, arch or SC.AUDIT_ARCH_X86_64, 0, *args6)
    return interp.run_filter(insns, struct.unpack("<16I", raw))


def err(code: int) -> int:
    return SC.SECCOMP_RET_ERRNO | code


def test_default_and_plain_rules():
    prog = seccomp.compile_profile(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["kill"], "action": "SCMP_ACT_KILL"},
            ],
        }
    )
    assert run(prog, N.SYS_read) == ALLOW
    assert run(prog, N.SYS_write) == ALLOW
    assert run(prog, N.SYS_mkdir) == err(13)
    assert run(prog, N.SYS_kill) == SC.SECCOMP_RET_KILL_THREAD
    # The default errno is EPERM.
    assert run(prog, N.SYS_open) == err(errno.EPERM)


def test_default_errno_ret_and_foreign_architectures():
    prog = seccomp.compile_profile(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {
                    "names": ["getpid"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": errno.ENOSYS,
                }
            ],
        }
    )
    assert run(prog, N.SYS_getpid) == err(errno.ENOSYS)
    assert run(prog, N.SYS_getppid) == ALLOW
    assert run(prog, N.SYS_getpid, arch=0x40000003) == SC.SECCOMP_RET_KILL_PROCESS
    assert run(prog, 0x40000000 | N.SYS_getpid) == SC.SECCOMP_RET_KILL_PROCESS


@pytest.mark.parametrize(
    ("op", "value", "holds", "fails"),
    [
        ("SCMP_CMP_EQ", 5, [5], [4, 6, 5 | 1 << 32]),
        ("SCMP_CMP_NE", 5, [4, 6, 5 | 1 << 32], [5]),
        ("SCMP_CMP_LT", 1 << 33, [0, (1 << 33) - 1], [1 << 33, 1 << 34]),
        ("SCMP_CMP_LE", 1 << 33, [1 << 33, 7], [(1 << 33) + 1, 1 << 40]),
        ("SCMP_CMP_GT", (1 << 32) + 5, [(1 << 32) + 6, 1 << 33], [(1 << 32) + 5, 6]),
        ("SCMP_CMP_GE", (1 << 32) + 5, [(1 << 32) + 5, 1 << 63], [(1 << 32) + 4, 9]),
    ],
)
def test_comparisons_are_on_64_bits(op, value, holds, fails):
    prog = seccomp.compile_profile(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {
                    "names": ["ioctl"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 1, "value": value, "op": op}],
                }
            ],
        }
    )
    for v in holds:
        assert run(prog, N.SYS_ioctl, 0, v) == ALLOW, v
    for v in fails:
        assert run(prog, N.SYS_ioctl, 0, v) == err(errno.EPERM), v


def test_masked_eq_and_and_of_arguments():
    prog = seccomp.compile_profile(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {
                    "names": ["clone"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [
                        {
                            "index": 0,
                            "value": 0x7E020000,
                            "valueTwo": 0,
                            "op": "SCMP_CMP_MASKED_EQ",
                        },
                        {"index": 2, "value": 3, "op": "SCMP_CMP_EQ"},
                    ],
                }
            ],
        }
    )
    assert run(prog, N.SYS_clone, 0x11, 0, 3) == ALLOW
    assert run(prog, N.SYS_clone, 0x11, 0, 4) == err(errno.EPERM)
    # CLONE_NEWUSER is in the mask.
    assert run(prog, N.SYS_clone, 0x10000000, 0, 3) == err(errno.EPERM)


def test_conditions_on_one_argument_are_alternatives():
    prog = seccomp.compile_profile(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {
                    "names": ["personality"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [
                        {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                        {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                    ],
                }
            ],
        }
    )
    assert run(prog, N.SYS_personality, 0) == ALLOW
    assert run(prog, N.SYS_personality, 8) == ALLOW
    assert run(prog, N.SYS_personality, 1) == err(errno.EPERM)


def test_every_call_number_of_a_large_profile():
    # Every other call allowed: the binary search and far jumps.
    names = [N.NAMES[nr] for nr in sorted(N.NAMES)]
    prog = seccomp.compile_profile(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": names[::2], "action": "SCMP_ACT_ALLOW"},
                {
                    "names": names[1::4],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}],
                },
            ],
        }
    )
    for i, name in enumerate(names):
        nr = N.SYS_read if name == "read" else getattr(N, f"SYS_{name}")
        if i % 2 == 0:
            want = ALLOW
        elif i % 4 == 1:
            assert run(prog, nr, 1) == ALLOW, name
            want = err(errno.EPERM)
        else:
            want = err(errno.EPERM)
        assert run(prog, nr) == want, name


def test_unknown_names_are_warned_about():
    prog = seccomp.compile_profile(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["no_such_call", "getpid"], "action": "SCMP_ACT_KILL"}
            ],
        }
    )
    assert "no_such_call" in prog.warnings[0]
    assert run(prog, N.SYS_getpid) == SC.SECCOMP_RET_KILL_THREAD


@pytest.mark.parametrize(
    "profile",
    [
        {"defaultAction": "SCMP_ACT_BOGUS"},
        {"defaultAction": "SCMP_ACT_NOTIFY"},
        {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]},
        {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent"},
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {
                    "names": ["read"],
                    "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}],
                }
            ],
        },
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {
                    "names": ["read"],
                    "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_BOGUS"}],
                }
            ],
        },
    ],
)
def test_bad_profiles_are_refused(profile):
    with pytest.raises(seccomp.SeccompError):
        seccomp.compile_profile(profile)


_PODMAN_PROFILE = "/usr/share/containers/seccomp.json"


@pytest.mark.skipif(
    not os.path.exists(_PODMAN_PROFILE), reason="containers-common not installed"
)
def test_podman_default_profile():
    with open(_PODMAN_PROFILE) as f:
        profile = json.load(f)
    # What podman hands the runtime: the includes and excludes resolved
    # (none of them exclude anything on x86-64 for root).
    prog = seccomp.compile_profile(profile)
    assert run(prog, N.SYS_read) == ALLOW
    assert run(prog, N.SYS_personality, 8) == ALLOW
    assert run(prog, N.SYS_personality, 3) == err(errno.ENOSYS)
    assert run(prog, N.SYS_add_key) == err(errno.ENOSYS)


def test_other_architectures_names_are_expected():
    prog = seccomp.compile_profile(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": ["chown32", "getpid"], "action": "SCMP_ACT_KILL"}],
        }
    )
    assert prog.warnings == ()
    assert run(prog, N.SYS_getpid) == SC.SECCOMP_RET_KILL_THREAD


@pytest.mark.skipif(
    not os.path.exists(_PODMAN_PROFILE), reason="containers-common not installed"
)
def test_fixed_results_agree_with_the_program():
    # The sentry caches a call's result when the program's path for it
    # reads nothing but the call number and architecture: check that claim
    # on a real profile, every call, several argument values.
    with open(_PODMAN_PROFILE) as f:
        prog = seccomp.compile_profile(json.load(f))
    insns = interp.compile_filter(prog.bpf)
    fixed = 0
    for nr in sorted(N.NAMES):
        got = interp.fixed_result(insns, nr, SC.AUDIT_ARCH_X86_64)
        if got is None:
            continue
        fixed += 1
        for args in ((), (1, 2, 3), (1 << 40, 8, 0x7E020000), (0xFFFFFFFF,) * 6):
            assert run(prog, nr, *args) == got, (N.NAMES[nr], args)
    # Only the few calls with argument rules need the interpreter.
    assert fixed > len(N.NAMES) - 10
