"""The spec's linux.seccomp profile compiled to a classic BPF program for
the application (the sentry runs it, pkg/sentry/kernel/seccomp.py), with
the meaning runc gives a profile through libseccomp:

- defaultAction for every call no rule matches (defaultErrnoRet its errno);
- each syscalls entry is a rule for each of its names; a name this kernel
  does not know is skipped, as runc does, with a warning unless the profile
  lists other architectures (whose own calls it then names);
- the args of an entry must all hold (AND), except that when two of them
  test the same argument the entry becomes one rule per condition (OR),
  which is what runc does because libseccomp cannot AND two conditions on
  one argument;
- comparisons are on the full 64-bit argument: SCMP_CMP_EQ, NE, LT, LE,
  GT, GE, and MASKED_EQ ((arg & value) == valueTwo);
- among the rules of one call, conditional ones are tried first in profile
  order, then the first unconditional one; none matching means the default;
- architectures: the sentry runs x86-64 programs only, so a call made as
  any other architecture (or with the x32 bit) gets KILL_PROCESS, as
  libseccomp's default for a foreign architecture.

The program tests the call number with a binary search (a few compares per
call whatever the profile's size), then the rules of that call. Classic BPF
jumps forward only, by at most 255 for the conditional ones: the assembler
places an unconditional jump (32-bit offset) wherever a target is farther.
"""

from __future__ import annotations

import errno as E
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pkg.abi.linux import seccomp as SC
from pkg.abi.linux import sysno as N

__all__ = ["SeccompError", "compile_profile"]

_BY_NAME = {name: nr for nr, name in N.NAMES.items()}

_X32_SYSCALL_BIT = 0x40000000

# struct seccomp_data offsets.
_OFF_NR = 0
_OFF_ARCH = 4
_OFF_ARGS = 16

# Instructions used.
_LD_ABS = SC.BPF_LD | SC.BPF_W | SC.BPF_ABS
_AND_K = SC.BPF_ALU | SC.BPF_AND | SC.BPF_K
_JA = SC.BPF_JMP | SC.BPF_JA
_JEQ = SC.BPF_JMP | SC.BPF_JEQ | SC.BPF_K
_JGT = SC.BPF_JMP | SC.BPF_JGT | SC.BPF_K
_JGE = SC.BPF_JMP | SC.BPF_JGE | SC.BPF_K
_RET = SC.BPF_RET | SC.BPF_K

_ACTIONS = {
    "SCMP_ACT_KILL": SC.SECCOMP_RET_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": SC.SECCOMP_RET_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": SC.SECCOMP_RET_KILL_PROCESS,
    "SCMP_ACT_TRAP": SC.SECCOMP_RET_TRAP,
    "SCMP_ACT_ERRNO": SC.SECCOMP_RET_ERRNO,
    "SCMP_ACT_TRACE": SC.SECCOMP_RET_TRACE,
    "SCMP_ACT_LOG": SC.SECCOMP_RET_LOG,
    "SCMP_ACT_ALLOW": SC.SECCOMP_RET_ALLOW,
}

_OPS = frozenset(
    {
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    }
)

# Architectures a profile may name; only x86-64 ever matches here.
_ARCHES = frozenset(
    {
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_ARM",
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_MIPS",
        "SCMP_ARCH_MIPS64",
        "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL",
        "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32",
        "SCMP_ARCH_PPC",
        "SCMP_ARCH_PPC64",
        "SCMP_ARCH_PPC64LE",
        "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X",
        "SCMP_ARCH_PARISC",
        "SCMP_ARCH_PARISC64",
        "SCMP_ARCH_RISCV64",
    }
)

_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 0,
    "SECCOMP_FILTER_FLAG_LOG": SC.SECCOMP_FILTER_FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 0,
}

# Linear tests below this many call numbers, binary search above.
_LINEAR = 4

_MASK32 = 0xFFFFFFFF
_MASK64 = (1 << 64) - 1


class SeccompError(Exception):
    """SeccompError: the profile is malformed or asks for what cannot be
    done."""


@dataclass(frozen=True, slots=True)
class Cond:
    """Cond is one argument comparison."""

    index: int
    op: str
    value: int
    value_two: int = 0


@dataclass(frozen=True, slots=True)
class Rule:
    """Rule: the action for one call when every condition holds."""

    nr: int
    action: int
    conds: tuple[Cond, ...] = ()


@dataclass(frozen=True, slots=True)
class Program:
    """Program is a compiled profile."""

    # The struct sock_filter array.
    bpf: bytes
    # SECCOMP_FILTER_FLAG_* to install it with.
    flags: int
    warnings: tuple[str, ...]


def _action(name: object, errno_ret: object, where: str) -> int:
    if name == "SCMP_ACT_NOTIFY":
        raise SeccompError(
            f"{where}: SCMP_ACT_NOTIFY needs a seccomp agent, which the sentry "
            "does not support"
        )
    if name not in _ACTIONS:
        raise SeccompError(f"{where}: unknown action {name!r}")
    base = _ACTIONS[name]  # type: ignore[index]
    if base in (SC.SECCOMP_RET_ERRNO, SC.SECCOMP_RET_TRACE):
        data = E.EPERM if errno_ret is None else errno_ret
        if not isinstance(data, int) or isinstance(data, bool) or data < 0:
            raise SeccompError(f"{where}: errnoRet must be a non-negative integer")
        return base | (data & SC.SECCOMP_RET_DATA)
    return base


def _uint64(v: object, where: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= _MASK64:
        raise SeccompError(f"{where} must be a uint64")
    return v


def _rules(profile: dict[str, Any], warnings: list[str]) -> list[Rule]:
    rules: list[Rule] = []
    entries = profile.get("syscalls") or []
    if not isinstance(entries, list):
        raise SeccompError("linux.seccomp.syscalls must be a list")
    unknown: list[str] = []
    for i, entry in enumerate(entries):
        where = f"linux.seccomp.syscalls[{i}]"
        if not isinstance(entry, dict):
            raise SeccompError(f"{where} must be an object")
        names = entry.get("names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise SeccompError(f"{where}.names must list system call names")
        action = _action(entry.get("action"), entry.get("errnoRet"), where)
        conds = []
        for j, a in enumerate(entry.get("args") or []):
            w = f"{where}.args[{j}]"
            if not isinstance(a, dict):
                raise SeccompError(f"{w} must be an object")
            index = a.get("index")
            if not isinstance(index, int) or isinstance(index, bool):
                raise SeccompError(f"{w}.index must be 0 to 5")
            if not 0 <= index <= 5:
                raise SeccompError(f"{w}.index must be 0 to 5")
            op = a.get("op")
            if op not in _OPS:
                raise SeccompError(f"{w}: unknown op {op!r}")
            conds.append(
                Cond(
                    index,
                    op,
                    _uint64(a.get("value", 0), f"{w}.value"),
                    _uint64(a.get("valueTwo", 0), f"{w}.valueTwo"),
                )
            )
        indexes = [c.index for c in conds]
        if len(set(indexes)) < len(indexes):
            # runc: one rule per condition.
            groups = [(c,) for c in conds]
        else:
            groups = [tuple(conds)]
        for name in names:
            nr = _BY_NAME.get(name)
            if nr is None:
                unknown.append(name)
                continue
            rules.extend(Rule(nr, action, g) for g in groups)
    if unknown:
        warnings.append(
            "linux.seccomp: system calls unknown on x86-64 are skipped: "
            + ", ".join(sorted(set(unknown)))
        )
    return rules


class _Asm:
    """_Asm assembles instructions whose jump targets are labels."""

    def __init__(self) -> None:
        # (code, jt, jf, k); jt and jf, and k of a JA, may be labels (str).
        self.insns: list[tuple[int, int | str, int | str, int | str]] = []
        self.labels: dict[str, int] = {}
        self._n = 0

    def label(self) -> str:
        self._n += 1
        return f"L{self._n}"

    def place(self, label: str) -> None:
        self.labels[label] = len(self.insns)

    def emit(
        self, code: int, jt: int | str = 0, jf: int | str = 0, k: int | str = 0
    ) -> None:
        self.insns.append((code, jt, jf, k))

    def jump_if(self, code: int, k: int, jt: int | str, jf: int | str) -> None:
        """A conditional jump; a label target too far for its 8-bit offset
        is reached through a JA that _relax inserts right after it."""
        self.emit(code, jt, jf, k)

    def assemble(self) -> bytes:
        insns = self._relax()
        out = bytearray()
        for pc, (code, jt, jf, k) in enumerate(insns):
            if code == _JA:
                assert isinstance(k, int)
                out += struct.pack("<HBBI", code, 0, 0, k)
                continue
            assert isinstance(jt, int) and isinstance(jf, int) and isinstance(k, int)
            assert 0 <= jt <= 255 and 0 <= jf <= 255, (pc, jt, jf)
            out += struct.pack("<HBBI", code, jt, jf, k)
        return bytes(out)

    def _relax(self) -> list[tuple[int, int | str, int | str, int | str]]:
        """Resolves labels; conditional jumps to far labels go through a JA
        trampoline placed right after the jump."""
        insns = list(self.insns)
        labels = dict(self.labels)
        while True:
            fixed = True
            for pc, (code, jt, jf, _k) in enumerate(insns):
                if code in (_JEQ, _JGT, _JGE):
                    for t in (jt, jf):
                        if isinstance(t, str) and labels[t] - pc - 1 > 255:
                            self._trampoline(insns, labels, pc, t)
                            fixed = False
                            break
                    if not fixed:
                        break
            if fixed:
                break
        out = []
        for pc, (code, jt, jf, k) in enumerate(insns):

            def rel(t: int | str, pc: int = pc) -> int:
                return labels[t] - pc - 1 if isinstance(t, str) else t

            if code == _JA:
                out.append((code, 0, 0, rel(k)))
            else:
                out.append((code, rel(jt), rel(jf), k))
        return out

    @staticmethod
    def _trampoline(
        insns: list[tuple[int, int | str, int | str, int | str]],
        labels: dict[str, int],
        pc: int,
        target: str,
    ) -> None:
        # The jump falls through to a JA to target, and its other edge, now
        # one instruction farther, skips the JA.
        code, jt, jf, k = insns[pc]
        for name, at in labels.items():
            if at > pc:
                labels[name] = at + 1
        insns.insert(pc + 1, (_JA, 0, 0, target))

        def redirect(t: int | str) -> int | str:
            if t == target:
                return 0
            if isinstance(t, int):
                return t + 1
            return t

        insns[pc] = (code, redirect(jt), redirect(jf), k)


def _emit_cond(asm: _Asm, c: Cond, fail: str) -> None:
    """Emits a test of one condition: falls through when it holds, jumps
    to fail when not. A is clobbered."""
    lo_off = _OFF_ARGS + 8 * c.index
    hi_off = lo_off + 4
    v_lo, v_hi = c.value & _MASK32, c.value >> 32
    op = c.op
    ok = asm.label()
    if op == "SCMP_CMP_MASKED_EQ":
        m_lo, m_hi = c.value & _MASK32, c.value >> 32
        w_lo, w_hi = c.value_two & _MASK32, c.value_two >> 32
        asm.emit(_LD_ABS, k=hi_off)
        asm.emit(_AND_K, k=m_hi)
        asm.jump_if(_JEQ, w_hi, 0, fail)
        asm.emit(_LD_ABS, k=lo_off)
        asm.emit(_AND_K, k=m_lo)
        asm.jump_if(_JEQ, w_lo, ok, fail)
    elif op in ("SCMP_CMP_EQ", "SCMP_CMP_NE"):
        eq, ne = (ok, fail) if op == "SCMP_CMP_EQ" else (fail, ok)
        asm.emit(_LD_ABS, k=hi_off)
        asm.jump_if(_JEQ, v_hi, 0, ne)
        asm.emit(_LD_ABS, k=lo_off)
        asm.jump_if(_JEQ, v_lo, eq, ne)
    else:
        # arg > v (GT) or arg >= v (GE); LT and LE are their negations.
        strict = op in ("SCMP_CMP_GT", "SCMP_CMP_LE")
        yes, no = (ok, fail) if op in ("SCMP_CMP_GT", "SCMP_CMP_GE") else (fail, ok)
        asm.emit(_LD_ABS, k=hi_off)
        asm.jump_if(_JGT, v_hi, yes, 0)
        asm.jump_if(_JEQ, v_hi, 0, no)
        asm.emit(_LD_ABS, k=lo_off)
        asm.jump_if(_JGT if strict else _JGE, v_lo, yes, no)
    asm.place(ok)


def _emit_call(asm: _Asm, rules: list[Rule], default: int) -> None:
    """Emits the rules of one call (A no longer matters)."""
    conditional = [r for r in rules if r.conds]
    plain = [r for r in rules if not r.conds]
    for r in conditional:
        fail = asm.label()
        for c in r.conds:
            _emit_cond(asm, c, fail)
        asm.emit(_RET, k=r.action)
        asm.place(fail)
    asm.emit(_RET, k=plain[0].action if plain else default)


def _emit_search(
    asm: _Asm,
    nrs: Sequence[int],
    by_nr: dict[int, list[Rule]],
    default: int,
) -> None:
    """Emits the dispatch on A (the call number) among nrs, sorted."""
    if len(nrs) <= _LINEAR:
        for nr in nrs:
            nxt = asm.label()
            asm.jump_if(_JEQ, nr, 0, nxt)
            _emit_call(asm, by_nr[nr], default)
            asm.place(nxt)
        asm.emit(_RET, k=default)
        return
    mid = len(nrs) // 2
    right = asm.label()
    asm.jump_if(_JGE, nrs[mid], right, 0)
    _emit_search(asm, nrs[:mid], by_nr, default)
    asm.place(right)
    # Each half's code is entered with A = the call number.
    _emit_search(asm, nrs[mid:], by_nr, default)


def compile_profile(profile: object) -> Program:
    """Compiles a linux.seccomp object.

    Raises:
        SeccompError: the profile is malformed or unsupported.
    """
    if not isinstance(profile, dict):
        raise SeccompError("linux.seccomp must be an object")
    warnings: list[str] = []
    default = _action(
        profile.get("defaultAction"),
        profile.get("defaultErrnoRet"),
        "linux.seccomp.defaultAction",
    )
    arches = profile.get("architectures") or []
    if not isinstance(arches, list) or any(a not in _ARCHES for a in arches):
        raise SeccompError(f"linux.seccomp.architectures: unknown in {arches!r}")
    flags = 0
    for f in profile.get("flags") or []:
        if f not in _FLAGS:
            raise SeccompError(f"linux.seccomp.flags: {f!r} is not supported")
        flags |= _FLAGS[f]
    if profile.get("listenerPath"):
        raise SeccompError(
            "linux.seccomp.listenerPath: seccomp agents are not supported"
        )
    rules = _rules(profile, warnings)
    if set(arches) - {"SCMP_ARCH_X86_64"}:
        # A profile for several architectures names their own calls
        # (chown32, _llseek...): skipping those is expected, not news.
        warnings.clear()
    by_nr: dict[int, list[Rule]] = {}
    for r in rules:
        by_nr.setdefault(r.nr, []).append(r)
    # Calls whose every rule has the default action need no code.
    nrs = sorted(nr for nr, rs in by_nr.items() if any(r.action != default for r in rs))

    asm = _Asm()
    bad_arch = asm.label()
    asm.emit(_LD_ABS, k=_OFF_ARCH)
    asm.jump_if(_JEQ, SC.AUDIT_ARCH_X86_64, 0, bad_arch)
    asm.emit(_LD_ABS, k=_OFF_NR)
    asm.jump_if(_JGE, _X32_SYSCALL_BIT, bad_arch, 0)
    _emit_search(asm, nrs, by_nr, default)
    asm.place(bad_arch)
    asm.emit(_RET, k=SC.SECCOMP_RET_KILL_PROCESS)
    bpf = asm.assemble()
    if len(bpf) // 8 > SC.BPF_MAXINSNS:
        raise SeccompError(
            f"linux.seccomp: the profile compiles to {len(bpf) // 8} "
            f"instructions, more than the {SC.BPF_MAXINSNS} a filter may have"
        )
    return Program(bpf, flags, tuple(warnings))
