"""Tests of the seccomp filter assembler: by interpreting the program, and by
installing filters in forked children."""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import struct

import pytest

from pkg.seccomp import seccomp as sc

_SYS_DUP = 32
_SYS_GETPPID = 110


def run_bpf(prog: bytes, nr: int, args: tuple[int, ...] = (), arch: int = 0) -> int:
    """Interprets the subset of classic BPF that assemble emits."""
    arch = arch or sc.AUDIT_ARCH_X86_64
    args = tuple(args) + (0,) * (6 - len(args))
    data = struct.pack("<iI Q 6Q", nr, arch, 0, *args)
    insns = [struct.unpack_from("<HBBI", prog, i) for i in range(0, len(prog), 8)]
    a = 0
    pc = 0
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == 0x20:
            a = struct.unpack_from("<I", data, k)[0]
        elif code == 0x54:
            a &= k
        elif code == 0x15:
            pc += jt if a == k else jf
        elif code == 0x35:
            pc += jt if a >= k else jf
        elif code == 0x05:
            pc += k
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


class TestAssemble:
    RULES = [
        sc.Rule(1),
        sc.Rule(2, sc.ret_errno(errno.EPERM)),
        sc.Rule(3, conds=(sc.ArgCond(0, 0xFF, 7),)),
        sc.Rule(
            3, sc.ret_errno(errno.EACCES), conds=(sc.ArgCond(1, 1 << 40, 1 << 40),)
        ),
        sc.Rule(4, conds=(sc.ArgCond(0, 1, 1), sc.ArgCond(2, 0xF0, 0x20))),
    ]

    def prog(self) -> bytes:
        return sc.assemble(self.RULES, sc.SECCOMP_RET_KILL_PROCESS)

    def test_plain_rules(self):
        assert run_bpf(self.prog(), 1) == sc.SECCOMP_RET_ALLOW
        assert run_bpf(self.prog(), 2) == sc.ret_errno(errno.EPERM)
        assert run_bpf(self.prog(), 99) == sc.SECCOMP_RET_KILL_PROCESS

    def test_conditions(self):
        p = self.prog()
        assert run_bpf(p, 3, (0x107,)) == sc.SECCOMP_RET_ALLOW
        assert run_bpf(p, 3, (8,)) == sc.SECCOMP_RET_KILL_PROCESS
        # The second rule for 3 checks the high word of arg 1.
        assert run_bpf(p, 3, (8, 1 << 40)) == sc.ret_errno(errno.EACCES)
        assert run_bpf(p, 3, (8, 1)) == sc.SECCOMP_RET_KILL_PROCESS
        assert run_bpf(p, 4, (1, 0, 0x25)) == sc.SECCOMP_RET_ALLOW
        assert run_bpf(p, 4, (1, 0, 0x35)) == sc.SECCOMP_RET_KILL_PROCESS
        assert run_bpf(p, 4, (0, 0, 0x25)) == sc.SECCOMP_RET_KILL_PROCESS

    def test_other_arch_and_x32(self):
        p = self.prog()
        assert run_bpf(p, 1, arch=0x40000003) == sc.SECCOMP_RET_KILL_PROCESS
        assert run_bpf(p, 1 | 0x40000000) == sc.SECCOMP_RET_KILL_PROCESS

    def test_many_rules(self):
        rules = [sc.Rule(nr) for nr in range(300)]
        p = sc.assemble(rules, sc.ret_errno(errno.ENOSYS))
        assert run_bpf(p, 299) == sc.SECCOMP_RET_ALLOW
        assert run_bpf(p, 300) == sc.ret_errno(errno.ENOSYS)


def in_child(fn) -> int:
    """Runs fn in a forked child; returns its wait status."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = fn()
        finally:
            os._exit(code)
    return os.waitpid(pid, 0)[1]


def raw_syscall(nr: int, *args: int) -> tuple[int, int]:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    ctypes.set_errno(0)
    ret = libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args))
    return ret, ctypes.get_errno()


class TestInstall:
    def test_errno_rules(self):
        def child() -> int:
            sc.install(
                [
                    sc.Rule(_SYS_GETPPID, sc.ret_errno(errno.EDOM)),
                    sc.Rule(
                        _SYS_DUP, sc.ret_errno(errno.EMLINK), (sc.ArgCond(0, ~0, 0),)
                    ),
                ],
                sc.SECCOMP_RET_ALLOW,
            )
            if raw_syscall(_SYS_GETPPID) != (-1, errno.EDOM):
                return 2
            if raw_syscall(_SYS_DUP, 0) != (-1, errno.EMLINK):
                return 3
            fd, _ = raw_syscall(_SYS_DUP, 1)
            return 0 if fd > 2 else 4

        assert in_child(child) == 0

    def test_default_kill(self):
        def child() -> int:
            sc.install(
                [sc.Rule(nr) for nr in (0, 1, 60, 231)],
                sc.SECCOMP_RET_KILL_PROCESS,
            )
            raw_syscall(_SYS_GETPPID)
            return 0

        status = in_child(child)
        assert os.WIFSIGNALED(status)
        assert os.WTERMSIG(status) == signal.SIGSYS

    def test_rejects_overlong(self):
        with pytest.raises(ValueError):
            sc.assemble([sc.Rule(1, conds=(sc.ArgCond(0, ~0, 0),))] * 1000, 0)
