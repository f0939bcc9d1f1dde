"""Seccomp-bpf filters built in Python: rules to a classic BPF program.

A filter is a set of rules, one per allowed system call number: either any
arguments are allowed, or one of several argument patterns must match
(each pattern compares some arguments for equality, or under a mask, with a
constant; both 32-bit halves of an argument are compared). Everything else
gets the default action.

The program checks the architecture (x86-64 only; x32 numbers are refused),
then finds the call number in a binary search tree of comparisons, so that
an allowed call costs a handful of instructions rather than one per rule.
Conditional BPF jumps reach at most 255 instructions ahead; the tree's jumps
to far subtrees go through an unconditional jump, whose reach is unlimited.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pkg.abi.linux import seccomp as SC
from runsc.boot import syscalls

_SOCK_FILTER = struct.Struct("<HBBI")

# Leaves of the search tree hold at most this many numbers, compared in a
# row.
_LEAF = 4


@dataclass(frozen=True, slots=True)
class Arg:
    """Arg matches argument `index` when (arg & mask) == value, comparing
    all 64 bits."""

    index: int
    value: int
    mask: int = (1 << 64) - 1


# A pattern is a tuple of Args that must all match; a rule is None (any
# arguments) or a tuple of patterns of which one must match.
Pattern = tuple[Arg, ...]
Rule = tuple[Pattern, ...] | None


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
        out = bytearray()
        for i, (code, jt, jf, k) in enumerate(self.insns):
            out += _SOCK_FILTER.pack(
                code,
                self._offset(i, jt, 256),
                self._offset(i, jf, 256),
                self._offset(i, k, 1 << 32),
            )
        if len(self.insns) > SC.BPF_MAXINSNS:
            raise ValueError(f"filter has {len(self.insns)} instructions")
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


def build(
    rules: Mapping[int, Rule],
    default_action: int,
    bad_arch_action: int = SC.SECCOMP_RET_KILL_PROCESS,
    extra_actions: Mapping[int, int] | None = None,
) -> bytes:
    """Compiles rules into a seccomp program.

    Args:
        rules: allowed system call numbers and their argument rules.
        default_action: the action for every other call.
        bad_arch_action: the action for calls of another architecture.
        extra_actions: numbers that get a fixed action other than ALLOW (an
            errno, say), regardless of arguments.

    Returns:
        The program as packed struct sock_filter entries.
    """
    actions: dict[int, object] = {}
    for nr, action in (extra_actions or {}).items():
        actions[nr] = action
    for nr, rule in rules.items():
        if nr in actions:
            raise ValueError(f"system call {nr} has two rules")
        actions[nr] = rule

    b = _Builder()
    deny = _Label()
    b.load(SC.SECCOMP_DATA_ARCH)
    ok_arch = _Label()
    b.jump(SC.BPF_JEQ, SC.AUDIT_ARCH_X86_64, ok_arch, 0)
    b.ret(bad_arch_action)
    b.bind(ok_arch)
    b.load(SC.SECCOMP_DATA_NR)
    b.jump(SC.BPF_JGE, SC.X32_SYSCALL_BIT, 0, 1)
    b.goto(deny)

    arg_rules: list[tuple[_Label, tuple[Pattern, ...]]] = []
    _tree(b, sorted(actions), actions, deny, arg_rules)

    for label, patterns in arg_rules:
        b.bind(label)
        for pattern in patterns:
            _pattern(b, pattern)
        b.goto(deny)

    b.bind(deny)
    b.ret(default_action)
    return b.assemble()


def _tree(
    b: _Builder,
    nrs: Sequence[int],
    actions: Mapping[int, object],
    deny: _Label,
    arg_rules: list[tuple[_Label, tuple[Pattern, ...]]],
) -> None:
    """Emits a search for the accumulator (the call number) among nrs."""
    if len(nrs) <= _LEAF:
        for nr in nrs:
            action = actions[nr]
            b.jump(SC.BPF_JEQ, nr, 0, 1)
            if action is None:
                b.ret(SC.SECCOMP_RET_ALLOW)
            elif isinstance(action, int):
                b.ret(action)
            else:
                label = _Label()
                arg_rules.append((label, action))  # type: ignore[arg-type]
                b.goto(label)
        b.goto(deny)
        return
    mid = len(nrs) // 2
    right = _Label()
    # if nr >= nrs[mid]: goto right (through a long jump).
    b.jump(SC.BPF_JGE, nrs[mid], 0, 1)
    b.goto(right)
    _tree(b, nrs[:mid], actions, deny, arg_rules)
    b.bind(right)
    _tree(b, nrs[mid:], actions, deny, arg_rules)


def _pattern(b: _Builder, pattern: Pattern) -> None:
    """Emits a check of one pattern: ALLOW if every Arg matches, else fall
    through to the next pattern."""
    next_pattern = _Label()
    for arg in pattern:
        base = SC.SECCOMP_DATA_ARGS + 8 * arg.index
        for offset, shift in ((base, 0), (base + 4, 32)):
            mask = arg.mask >> shift & 0xFFFFFFFF
            value = arg.value >> shift & 0xFFFFFFFF
            if mask == 0:
                continue
            b.load(offset)
            if mask != 0xFFFFFFFF:
                b.stmt(SC.BPF_ALU | SC.BPF_AND | SC.BPF_K, mask)
            b.jump(SC.BPF_JEQ, value, 0, next_pattern)
    b.ret(SC.SECCOMP_RET_ALLOW)
    b.bind(next_pattern)


def errno_action(err: int) -> int:
    """The action that fails a call with err."""
    return SC.SECCOMP_RET_ERRNO | (err & SC.SECCOMP_RET_DATA)


def install(program: bytes, *, all_threads: bool = True, log: bool = False) -> None:
    """Installs program on the calling thread, or every thread of the
    process (SECCOMP_FILTER_FLAG_TSYNC).

    Args:
        program: from build().
        all_threads: synchronise every thread of the process to the filter.
        log: ask the kernel to log every action but ALLOW (to the audit log,
            or the kernel log without auditd).

    Preconditions: no_new_privs is set, or the caller has CAP_SYS_ADMIN.

    Raises:
        OSError: the kernel refused the program (for TSYNC, a positive
            return names a thread that could not be synchronised).
    """
    flags = 0
    if all_threads:
        flags |= SC.SECCOMP_FILTER_FLAG_TSYNC
    if log:
        flags |= SC.SECCOMP_FILTER_FLAG_LOG
    ret = syscalls.seccomp(SC.SECCOMP_SET_MODE_FILTER, flags, program)
    if ret != 0:
        raise OSError(0, f"seccomp: thread {ret} could not be synchronised")
