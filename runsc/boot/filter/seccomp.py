"""The sentry's seccomp rules as runsc/boot/filter/config.py writes them,
compiled by pkg/seccomp.

A filter is a set of rules, one per allowed system call number: either any
arguments are allowed, or one of several argument patterns must match
(each pattern compares some arguments for equality, or under a mask, with a
constant; both 32-bit halves of an argument are compared). Everything else
gets the default action.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pkg.abi.linux import seccomp as SC
from pkg.seccomp import seccomp as sc
from runsc.boot import syscalls


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
    extra = extra_actions or {}
    out = [sc.Rule(nr, action) for nr, action in extra.items()]
    for nr, rule in rules.items():
        if nr in extra:
            raise ValueError(f"system call {nr} has two rules")
        if rule is None:
            out.append(sc.Rule(nr))
            continue
        for pattern in rule:
            conds = tuple(sc.ArgCond(a.index, a.mask, a.value) for a in pattern)
            out.append(sc.Rule(nr, conds=conds))
    return sc.assemble(out, default_action, bad_arch_action)


def errno_action(err: int) -> int:
    """The action that fails a call with err."""
    return sc.ret_errno(err)


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
