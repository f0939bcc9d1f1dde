"""Syscall table entries and their support levels.

Every system call number the sentry knows has an entry that says how well it
is supported. Unsupported calls are declared here with the errno they fail
with and a note, never hidden in a handler; `runsc help syscalls` prints the
table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkg.errors.syscall_error import SyscallError

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# Handler arguments: rdi, rsi, rdx, r10, r8, r9 as unsigned 64-bit values.
Args = tuple[int, int, int, int, int, int]
Handler = Callable[["Task", Args], int]

SUPPORT_FULL = "full"
SUPPORT_PARTIAL = "partial"
SUPPORT_ERROR = "error"


@dataclass(frozen=True, slots=True)
class Syscall:
    """Syscall is one entry of a system call table."""

    number: int
    name: str
    fn: Handler
    support: str
    note: str = ""


def full(number: int, name: str, fn: Handler) -> Syscall:
    """An entry for a fully implemented system call."""
    return Syscall(number, name, fn, SUPPORT_FULL)


def partial(number: int, name: str, fn: Handler, note: str) -> Syscall:
    """An entry for a system call with documented gaps."""
    return Syscall(number, name, fn, SUPPORT_PARTIAL, note)


def error(number: int, name: str, err: int, note: str) -> Syscall:
    """An entry for a system call that always fails with err."""

    def fail(t: Task, args: Args) -> int:
        raise SyscallError(err)

    fail.__name__ = f"sys_{name}"
    return Syscall(number, name, fail, SUPPORT_ERROR, note)


# Sign conversion of raw register values, for handlers.


def s32(v: int) -> int:
    """The low 32 bits of v as a signed int (C int arguments)."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def u32(v: int) -> int:
    """The low 32 bits of v (C unsigned int arguments)."""
    return v & 0xFFFFFFFF


def s64(v: int) -> int:
    """v as a signed 64-bit value (C long arguments)."""
    return v - (1 << 64) if v & (1 << 63) else v
