"""Seccomp-BPF filters for runsc's own host processes, assembled in Python.

A filter is a list of rules keyed by system call number. Each rule either
allows the call outright or allows it only when every one of its argument
conditions holds (an argument word, masked, equals a value); calls with no
matching rule get the default action. The program checks the architecture
first (anything but x86-64, and x32 numbers, get the default action) and then
tests each rule in turn: the lists are short and a linear program is easy to
check by reading it.

Classic BPF compares 32-bit words, so a condition on a 64-bit argument is
tested one half at a time (halves whose mask is zero are not loaded).
"""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass

# struct seccomp_data offsets.
_NR = 0
_ARCH = 4
_ARGS = 16

AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_KILL_THREAD = 0x00000000
SECCOMP_RET_TRAP = 0x00030000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_LOG = 0x7FFC0000
SECCOMP_RET_ALLOW = 0x7FFF0000

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1

_SYS_SECCOMP = 317
_PR_SET_NO_NEW_PRIVS = 38
_PR_GET_NO_NEW_PRIVS = 39

# BPF opcodes.
_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_JGE_K = 0x35
_BPF_ALU_AND_K = 0x54
_BPF_RET_K = 0x06


def ret_errno(code: int) -> int:
    """Returns the action that fails a call with errno code."""
    return SECCOMP_RET_ERRNO | (code & 0xFFFF)


@dataclass(frozen=True, slots=True)
class ArgCond:
    """ArgCond holds when (args[index] & mask) == value, on 64 bits."""

    index: int
    mask: int
    value: int


@dataclass(frozen=True, slots=True)
class Rule:
    """Rule gives action to call nr when all conds hold (always if none)."""

    nr: int
    action: int = SECCOMP_RET_ALLOW
    conds: tuple[ArgCond, ...] = ()


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k & 0xFFFFFFFF)


def assemble(rules: list[Rule], default_action: int) -> bytes:
    """Returns the BPF program, as packed struct sock_filter entries.

    Rules for the same call are tried in order; the first whose conditions
    hold decides.
    """
    prog = [
        _insn(_BPF_LD_W_ABS, 0, 0, _ARCH),
        _insn(_BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        _insn(_BPF_RET_K, 0, 0, default_action),
        _insn(_BPF_LD_W_ABS, 0, 0, _NR),
        _insn(_BPF_JGE_K, 0, 1, _X32_SYSCALL_BIT),
        _insn(_BPF_RET_K, 0, 0, default_action),
    ]
    for rule in rules:
        # Each condition is: load a word, mask it, compare; a mismatch jumps
        # past the rest of this rule (to the reload of nr that ends it).
        body: list[tuple[int, int, int, int]] = []
        for c in rule.conds:
            for half in (0, 1):
                mask = (c.mask >> (32 * half)) & 0xFFFFFFFF
                value = (c.value >> (32 * half)) & 0xFFFFFFFF
                if mask == 0:
                    continue
                body.append((_BPF_LD_W_ABS, 0, 0, _ARGS + 8 * c.index + 4 * half))
                body.append((_BPF_ALU_AND_K, 0, 0, mask))
                body.append((_BPF_JEQ_K, 0, -1, value))
        body.append((_BPF_RET_K, 0, 0, rule.action))
        # After the body comes the reload of nr; -1 stands for "to it".
        n = len(body)
        skip = n + (1 if rule.conds else 0)
        prog.append(_insn(_BPF_JEQ_K, 0, skip, rule.nr))
        for i, (code, jt, jf, k) in enumerate(body):
            prog.append(_insn(code, jt, n - i - 1 if jf == -1 else jf, k))
        if rule.conds:
            prog.append(_insn(_BPF_LD_W_ABS, 0, 0, _NR))
    prog.append(_insn(_BPF_RET_K, 0, 0, default_action))
    if len(prog) > 4096:
        raise ValueError("seccomp: filter too long")
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(rules: list[Rule], default_action: int, all_threads: bool = True) -> None:
    """Sets no_new_privs and installs the filter on this process.

    Args:
        rules: the rules.
        default_action: the action for every other call.
        all_threads: apply to every thread (SECCOMP_FILTER_FLAG_TSYNC),
            not just the caller.

    Raises:
        OSError: the kernel refused the filter.
    """
    prog = assemble(rules, default_action)
    libc = ctypes.CDLL(None, use_errno=True)
    # Set once for good; asking again would trip a filter that allows only
    # some prctl options.
    if libc.prctl(_PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1 and (
        libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
    ):
        e = ctypes.get_errno()
        raise OSError(e, "prctl(PR_SET_NO_NEW_PRIVS)")
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = _SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc.syscall.restype = ctypes.c_long
    ret = libc.syscall(
        ctypes.c_long(_SYS_SECCOMP),
        ctypes.c_long(SECCOMP_SET_MODE_FILTER),
        ctypes.c_long(SECCOMP_FILTER_FLAG_TSYNC if all_threads else 0),
        ctypes.byref(fprog),
    )
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"seccomp(SECCOMP_SET_MODE_FILTER) = {ret}")
