"""Seccomp-BPF filters for runsc's own host processes, assembled in Python.

A filter is a list of rules keyed by system call number. Each rule either
decides a call outright or only when every one of its argument conditions
holds (an argument word, masked, equals a value); the rules of one number
are tried in order, and calls that no rule decides get the default action.

The program checks the architecture (x86-64 only; x32 numbers get the
default action), then finds the call number in a binary search tree of
comparisons, so that a call costs a handful of instructions rather than one
per rule. Conditional BPF jumps reach at most 255 instructions ahead; the
tree's jumps to far subtrees go through an unconditional jump, whose reach
is unlimited. Classic BPF compares 32-bit words, so a condition on a 64-bit
argument is tested one half at a time (halves whose mask is zero are not
loaded).
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pkg.abi.linux import seccomp as SC

AUDIT_ARCH_X86_64 = SC.AUDIT_ARCH_X86_64

SECCOMP_RET_KILL_PROCESS = SC.SECCOMP_RET_KILL_PROCESS
SECCOMP_RET_KILL_THREAD = SC.SECCOMP_RET_KILL_THREAD
SECCOMP_RET_TRAP = SC.SECCOMP_RET_TRAP
SECCOMP_RET_ERRNO = SC.SECCOMP_RET_ERRNO
SECCOMP_RET_LOG = SC.SECCOMP_RET_LOG
SECCOMP_RET_ALLOW = SC.SECCOMP_RET_ALLOW

SECCOMP_SET_MODE_FILTER = SC.SECCOMP_SET_MODE_FILTER
SECCOMP_FILTER_FLAG_TSYNC = SC.SECCOMP_FILTER_FLAG_TSYNC

_SYS_SECCOMP = 317
_PR_SET_NO_NEW_PRIVS = 38
_PR_GET_NO_NEW_PRIVS = 39

_SOCK_FILTER = struct.Struct("<HBBI")

# Leaves of the search tree hold at most this many numbers, compared in a
# row.
_LEAF = 4


def ret_errno(code: int) -> int:
    """Returns the action that fails a call with errno code."""
    return SC.SECCOMP_RET_ERRNO | (code & SC.SECCOMP_RET_DATA)


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


class _Label:
    __slots__ = ("pos",)

    def __init__(self) -> None:
        self.pos = -1


class _Builder:
    """_Builder assembles BPF instructions with symbolic jump targets."""

    def __init__(self) -> None:
        # (code, jt, jf, k): jt and jf are _Labels or 0 (fall through) for
        # conditional jumps; k is a _Label for BPF_JA.
        self.insns: list[tuple[int, object, object, object]] = []

    def stmt(self, code: int, k: int) -> None:
        self.insns.append((code, 0, 0, k))

    def load(self, offset: int) -> None:
        self.stmt(SC.BPF_LD | SC.BPF_W | SC.BPF_ABS, offset)

    def ret(self, action: int) -> None:
        self.stmt(SC.BPF_RET | SC.BPF_K, action)

    def jump(self, op: int, k: int, jt: object, jf: object) -> None:
        self.insns.append((SC.BPF_JMP | op | SC.BPF_K, jt, jf, k))

    def goto(self, label: _Label) -> None:
        self.insns.append((SC.BPF_JMP | SC.BPF_JA, 0, 0, label))

    def bind(self, label: _Label) -> None:
        label.pos = len(self.insns)

    def assemble(self) -> bytes:
        if len(self.insns) > SC.BPF_MAXINSNS:
            raise ValueError(f"seccomp: filter has {len(self.insns)} instructions")
        out = bytearray()
        for i, (code, jt, jf, k) in enumerate(self.insns):
            out += _SOCK_FILTER.pack(
                code,
                self._offset(i, jt, 256),
                self._offset(i, jf, 256),
                self._offset(i, k, 1 << 32) & 0xFFFFFFFF,
            )
        return bytes(out)

    @staticmethod
    def _offset(i: int, target: object, limit: int) -> int:
        if not isinstance(target, _Label):
            return int(target)  # type: ignore[call-overload]
        if target.pos < 0:
            raise ValueError("unbound label")
        distance = target.pos - i - 1
        if not 0 <= distance < limit:
            raise ValueError(f"jump of {distance} from instruction {i}")
        return distance


def assemble(
    rules: Sequence[Rule], default_action: int, bad_arch_action: int | None = None
) -> bytes:
    """Returns the BPF program, as packed struct sock_filter entries.

    Args:
        rules: the rules; those for the same call are tried in order, and
            the first whose conditions hold decides.
        default_action: the action for calls no rule decides.
        bad_arch_action: the action for calls of another architecture
            (None: default_action).

    Raises:
        ValueError: the program is longer than the kernel takes.
    """
    by_nr: dict[int, list[Rule]] = {}
    for rule in rules:
        by_nr.setdefault(rule.nr, []).append(rule)

    b = _Builder()
    deny = _Label()
    b.load(SC.SECCOMP_DATA_ARCH)
    ok_arch = _Label()
    b.jump(SC.BPF_JEQ, SC.AUDIT_ARCH_X86_64, ok_arch, 0)
    b.ret(default_action if bad_arch_action is None else bad_arch_action)
    b.bind(ok_arch)
    b.load(SC.SECCOMP_DATA_NR)
    b.jump(SC.BPF_JGE, SC.X32_SYSCALL_BIT, 0, 1)
    b.goto(deny)

    chains: list[tuple[_Label, list[Rule]]] = []
    _tree(b, sorted(by_nr), by_nr, deny, chains)

    # The rules with conditions of each number, tried in a row; the
    # argument loads overwrite the number, so each chain ends the search.
    for label, chain in chains:
        b.bind(label)
        for rule in chain:
            if not rule.conds:
                b.ret(rule.action)
                break
            _conds(b, rule)
        else:
            b.goto(deny)

    b.bind(deny)
    b.ret(default_action)
    return b.assemble()


def _tree(
    b: _Builder,
    nrs: Sequence[int],
    by_nr: Mapping[int, list[Rule]],
    deny: _Label,
    chains: list[tuple[_Label, list[Rule]]],
) -> None:
    """Emits a search for the accumulator (the call number) among nrs."""
    if len(nrs) <= _LEAF:
        for nr in nrs:
            chain = by_nr[nr]
            b.jump(SC.BPF_JEQ, nr, 0, 1)
            if not chain[0].conds:
                b.ret(chain[0].action)
            else:
                label = _Label()
                chains.append((label, chain))
                b.goto(label)
        b.goto(deny)
        return
    mid = len(nrs) // 2
    right = _Label()
    # if nr >= nrs[mid]: goto right (through a long jump).
    b.jump(SC.BPF_JGE, nrs[mid], 0, 1)
    b.goto(right)
    _tree(b, nrs[:mid], by_nr, deny, chains)
    b.bind(right)
    _tree(b, nrs[mid:], by_nr, deny, chains)


def _conds(b: _Builder, rule: Rule) -> None:
    """Emits a check of rule's conditions: its action if every one holds,
    else fall through to what follows."""
    next_rule = _Label()
    for c in rule.conds:
        base = SC.SECCOMP_DATA_ARGS + 8 * c.index
        for offset, shift in ((base, 0), (base + 4, 32)):
            mask = c.mask >> shift & 0xFFFFFFFF
            value = c.value >> shift & 0xFFFFFFFF
            if mask == 0:
                continue
            b.load(offset)
            if mask != 0xFFFFFFFF:
                b.stmt(SC.BPF_ALU | SC.BPF_AND | SC.BPF_K, mask)
            b.jump(SC.BPF_JEQ, value, 0, next_rule)
    b.ret(rule.action)
    b.bind(next_rule)


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
