"""Tests of the seccomp BPF validator, interpreter and filter chains."""

from __future__ import annotations

import struct

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import seccomp as SC
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel import seccomp

LD_ABS = SC.BPF_LD | SC.BPF_W | SC.BPF_ABS
RET0 = (SC.BPF_RET | SC.BPF_K, 0, 0, 0)
ALU_K = SC.BPF_ALU | SC.BPF_K
JEQ_K = SC.BPF_JMP | SC.BPF_JEQ | SC.BPF_K
RET_K = SC.BPF_RET | SC.BPF_K
RET_A = SC.BPF_RET | SC.BPF_A


def _raw(*insns: tuple[int, int, int, int]) -> bytes:
    return b"".join(struct.pack("<HBBI", *i) for i in insns)


def _data(nr: int, *args: int) -> tuple[int, ...]:
    a = list(args) + [0] * (6 - len(args))
    raw = struct.pack("<iIQ6Q", nr, SC.AUDIT_ARCH_X86_64, 0x401000, *a)
    return struct.unpack("<16I", raw)


def _match(nr: int, action: int) -> tuple[seccomp.Insn, ...]:
    return seccomp.compile_filter(
        _raw(
            (LD_ABS, 0, 0, 0),
            (JEQ_K, 0, 1, nr),
            (RET_K, 0, 0, action),
            (RET_K, 0, 0, SC.SECCOMP_RET_ALLOW),
        )
    )


def test_match_filter() -> None:
    prog = _match(39, SC.SECCOMP_RET_ERRNO | 5)
    assert seccomp.run_filter(prog, _data(39)) == SC.SECCOMP_RET_ERRNO | 5
    assert seccomp.run_filter(prog, _data(40)) == SC.SECCOMP_RET_ALLOW


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("empty", b""),
        ("no return", _raw((LD_ABS, 0, 0, 0))),
        ("jump out", _raw((JEQ_K, 3, 0, 0), RET0)),
        ("ja out", _raw((SC.BPF_JMP | SC.BPF_JA, 0, 0, 1), RET0)),
        ("unaligned", _raw((LD_ABS, 0, 0, 2), RET0)),
        ("beyond data", _raw((LD_ABS, 0, 0, 64), RET0)),
        (
            "byte load",
            _raw((SC.BPF_LD | SC.BPF_B | SC.BPF_ABS, 0, 0, 0), (RET_K, 0, 0, 0)),
        ),
        ("mod", _raw((ALU_K | SC.BPF_MOD, 0, 0, 3), RET0)),
        (
            "div 0",
            _raw((ALU_K | SC.BPF_DIV, 0, 0, 0), (RET_K, 0, 0, 0)),
        ),
        (
            "shift 32",
            _raw((ALU_K | SC.BPF_LSH, 0, 0, 32), (RET_K, 0, 0, 0)),
        ),
        ("unwritten mem", _raw((SC.BPF_LD | SC.BPF_MEM, 0, 0, 1), RET0)),
        (
            "mem written on one path only",
            _raw(
                (JEQ_K, 0, 1, 0),
                (SC.BPF_ST, 0, 0, 1),
                (SC.BPF_LD | SC.BPF_MEM, 0, 0, 1),
                (RET_K, 0, 0, 0),
            ),
        ),
        ("bad mem index", _raw((SC.BPF_ST, 0, 0, 16), RET0)),
        (
            "ret x",
            _raw(
                (SC.BPF_RET | SC.BPF_X, 0, 0, 0),
            ),
        ),
        ("too long", _raw(*[(RET_K, 0, 0, 0)] * 4097)),
    ],
)
def test_invalid_programs(name: str, raw: bytes) -> None:
    with pytest.raises(SyscallError) as e:
        seccomp.compile_filter(raw)
    assert e.value.errno == errno.EINVAL, name


def test_scratch_written_on_every_path() -> None:
    prog = seccomp.compile_filter(
        _raw(
            (SC.BPF_LD | SC.BPF_IMM, 0, 0, 9),
            (SC.BPF_ST, 0, 0, 1),
            (JEQ_K, 0, 0, 0),
            (SC.BPF_LD | SC.BPF_MEM, 0, 0, 1),
            (RET_A, 0, 0, 0),
        )
    )
    assert seccomp.run_filter(prog, _data(0)) == 9


def test_arithmetic() -> None:
    alu = SC.BPF_ALU
    prog = seccomp.compile_filter(
        _raw(
            (LD_ABS, 0, 0, 16),  # args[0] low
            (alu | SC.BPF_SUB | SC.BPF_K, 0, 0, 10),
            (alu | SC.BPF_NEG, 0, 0, 0),
            (SC.BPF_LDX | SC.BPF_IMM, 0, 0, 0),
            (alu | SC.BPF_DIV | SC.BPF_X, 0, 0, 0),
            (RET_A, 0, 0, 0),
        )
    )
    # Division by X == 0 ends the program with 0.
    assert seccomp.run_filter(prog, _data(0, 3)) == 0
    prog = seccomp.compile_filter(
        _raw(
            (LD_ABS, 0, 0, 16),
            (alu | SC.BPF_SUB | SC.BPF_K, 0, 0, 10),
            (alu | SC.BPF_NEG, 0, 0, 0),
            (RET_A, 0, 0, 0),
        )
    )
    assert seccomp.run_filter(prog, _data(0, 3)) == 7
    assert seccomp.run_filter(prog, _data(0, 11)) == 0xFFFFFFFF


def test_jumps() -> None:
    jmp = SC.BPF_JMP
    prog = seccomp.compile_filter(
        _raw(
            (LD_ABS, 0, 0, 16),
            (jmp | SC.BPF_JSET | SC.BPF_K, 0, 1, 0x80000000),
            (RET_K, 0, 0, 1),
            (jmp | SC.BPF_JGT | SC.BPF_K, 0, 1, 100),
            (RET_K, 0, 0, 2),
            (jmp | SC.BPF_JGE | SC.BPF_K, 0, 1, 50),
            (RET_K, 0, 0, 3),
            (RET_K, 0, 0, 4),
        )
    )
    assert seccomp.run_filter(prog, _data(0, 0xFFFFFFFF)) == 1
    assert seccomp.run_filter(prog, _data(0, 101)) == 2
    assert seccomp.run_filter(prog, _data(0, 50)) == 3
    assert seccomp.run_filter(prog, _data(0, 49)) == 4


def test_chain_precedence() -> None:
    errno5 = seccomp.SeccompFilter(_match(1, SC.SECCOMP_RET_ERRNO | 5), None)
    trap = seccomp.SeccompFilter(_match(1, SC.SECCOMP_RET_TRAP), errno5)
    ret, match = seccomp.evaluate(trap, _data(1))
    assert ret == SC.SECCOMP_RET_TRAP
    assert match is trap
    kill = seccomp.SeccompFilter(_match(1, SC.SECCOMP_RET_KILL_PROCESS), trap)
    assert seccomp.evaluate(kill, _data(1))[0] == SC.SECCOMP_RET_KILL_PROCESS
    # Ties: the newest filter wins.
    errno6 = seccomp.SeccompFilter(_match(1, SC.SECCOMP_RET_ERRNO | 6), errno5)
    assert seccomp.evaluate(errno6, _data(1))[0] == SC.SECCOMP_RET_ERRNO | 6
    assert seccomp.evaluate(errno6, _data(2))[0] == SC.SECCOMP_RET_ALLOW


def test_ancestry_and_length() -> None:
    a = seccomp.SeccompFilter(_match(1, SC.SECCOMP_RET_ALLOW), None)
    b = seccomp.SeccompFilter(_match(1, SC.SECCOMP_RET_ALLOW), a)
    c = seccomp.SeccompFilter(_match(1, SC.SECCOMP_RET_ALLOW), None)
    assert b.descends_from(a)
    assert b.descends_from(None)
    assert not b.descends_from(c)
    assert b.length() == 2 * (4 + 4)


def test_fixed_results_are_cached_per_call() -> None:
    # getpid (39) is refused whatever its arguments; write (1) only when
    # its first argument is 2; everything else is allowed.
    prog = seccomp.compile_filter(
        _raw(
            (LD_ABS, 0, 0, 0),
            (JEQ_K, 0, 1, 39),
            (RET_K, 0, 0, SC.SECCOMP_RET_ERRNO | 1),
            (JEQ_K, 0, 3, 1),
            (LD_ABS, 0, 0, 16),
            (JEQ_K, 0, 1, 2),
            (RET_K, 0, 0, SC.SECCOMP_RET_ERRNO | 9),
            (RET_K, 0, 0, SC.SECCOMP_RET_ALLOW),
        )
    )
    arch = SC.AUDIT_ARCH_X86_64
    assert seccomp.fixed_result(prog, 39, arch) == SC.SECCOMP_RET_ERRNO | 1
    assert seccomp.fixed_result(prog, 1, arch) is None
    assert seccomp.fixed_result(prog, 0, arch) == SC.SECCOMP_RET_ALLOW
    f = seccomp.SeccompFilter(prog, None)
    assert seccomp.evaluate(f, _data(1, 2))[0] == SC.SECCOMP_RET_ERRNO | 9
    assert seccomp.evaluate(f, _data(1, 3))[0] == SC.SECCOMP_RET_ALLOW
    assert seccomp.evaluate(f, _data(39, 3))[0] == SC.SECCOMP_RET_ERRNO | 1
    assert f.fixed == {
        (1, arch): None,
        (39, arch): SC.SECCOMP_RET_ERRNO | 1,
    }
