"""Atomic read-modify-write of 32-bit words of application memory.

Futex operations that change the futex word (PI locking, FUTEX_WAKE_OP,
robust list cleanup) must be atomic with respect to application threads
that run at the same time on other CPUs and use `lock cmpxchg` on the same
word. The sentry reaches application memory through its own mapping of the
MemoryFile, so it uses the same instructions on the same physical page:
through libatomic's out-of-line __atomic_* functions, called with ctypes,
since Python has no atomic operations on memory of its own. The library is
loaded at import, during start-up, before the sentry stops opening files.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux.mman import PROT_READ, PROT_WRITE
from pkg.errors.syscall_error import SyscallError

if TYPE_CHECKING:
    from pkg.sentry.mm.memory_manager import MemoryManager
    from pkg.sentry.pgalloc.memory_file import MemoryFile

_SEQ_CST = 5


def _load_libatomic() -> ctypes.CDLL:
    """Loads libatomic by its soname; ctypes.util.find_library only if that
    fails, since it runs `ldconfig -p` in a child process (20-30 ms of every
    sandbox's start-up, docs/performance.md)."""
    try:
        return ctypes.CDLL("libatomic.so.1")
    except OSError:
        from ctypes import util  # noqa: PLC0415 (hosts without the soname)

        name = util.find_library("atomic")
        if name is None:
            raise
        return ctypes.CDLL(name)


_lib = _load_libatomic()
_cas = _lib.__atomic_compare_exchange_4
_cas.argtypes = (
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint32),
    ctypes.c_uint32,
    ctypes.c_int,
    ctypes.c_int,
)
_cas.restype = ctypes.c_bool


def _fetch_op(name: str) -> Callable[[int, int, int], int]:
    fn = getattr(_lib, name)
    fn.argtypes = (ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int)
    fn.restype = ctypes.c_uint32
    return fn


_exchange = _fetch_op("__atomic_exchange_4")
_fetch_add = _fetch_op("__atomic_fetch_add_4")
_fetch_or = _fetch_op("__atomic_fetch_or_4")
_fetch_and = _fetch_op("__atomic_fetch_and_4")
_fetch_xor = _fetch_op("__atomic_fetch_xor_4")

# Operations of fetch_op, as FUTEX_OP_* numbers them.
OP_SET = 0
OP_ADD = 1
OP_OR = 2
OP_ANDN = 3
OP_XOR = 4


def _base(mf: MemoryFile) -> int:
    # The address of the sentry's mapping of the MemoryFile. The ctypes
    # object exports the buffer only while it lives.
    anchor = ctypes.c_char.from_buffer(mf.view)
    try:
        return ctypes.addressof(anchor)
    finally:
        del anchor


def _word(mm: MemoryManager, addr: int) -> int:
    """Returns the sentry address of the writable word at addr.

    Preconditions: mm.mu is held.
    """
    if addr % 4:
        raise SyscallError(errno.EINVAL)
    ranges, n = mm._ranges_locked(addr, 4, PROT_READ | PROT_WRITE)
    if n != 4:
        raise SyscallError(errno.EFAULT)
    return _base(mm.mf) + ranges[0][0]


def compare_and_swap(mm: MemoryManager, addr: int, old: int, new: int) -> int:
    """Atomically replaces the word at addr by new if it equals old.

    Returns:
        The value found (== old when the swap happened).

    Raises:
        SyscallError: EFAULT if the word is not readable and writable.
    """
    with mm.mu:
        ptr = _word(mm, addr)
        expected = ctypes.c_uint32(old & 0xFFFFFFFF)
        _cas(ptr, ctypes.byref(expected), new & 0xFFFFFFFF, _SEQ_CST, _SEQ_CST)
        return expected.value


def fetch_op(mm: MemoryManager, addr: int, op: int, operand: int) -> int:
    """Atomically applies op (OP_*) with operand to the word at addr.

    Returns:
        The previous value.

    Raises:
        SyscallError: EFAULT if the word is not readable and writable;
            ENOSYS for an unknown op.
    """
    operand &= 0xFFFFFFFF
    with mm.mu:
        ptr = _word(mm, addr)
        if op == OP_SET:
            return _exchange(ptr, operand, _SEQ_CST)
        if op == OP_ADD:
            return _fetch_add(ptr, operand, _SEQ_CST)
        if op == OP_OR:
            return _fetch_or(ptr, operand, _SEQ_CST)
        if op == OP_ANDN:
            return _fetch_and(ptr, ~operand & 0xFFFFFFFF, _SEQ_CST)
        if op == OP_XOR:
            return _fetch_xor(ptr, operand, _SEQ_CST)
    raise SyscallError(errno.ENOSYS)
