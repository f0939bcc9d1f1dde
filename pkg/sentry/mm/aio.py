"""The completion ring of a native AIO context (io_setup(2)).

As in Linux (fs/aio.c), io_setup maps a ring into the address space and
its address is the context's id. The ring starts with a header (struct
aio_ring) that libaio reads to skip a system call when nothing has
completed, followed by the io_event slots: the sentry writes completions at
the tail and io_getevents(2) takes them from the head, so a program that
reaps events from the ring itself sees them too.
"""

from __future__ import annotations

import itertools
import logging
import struct
import threading
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux.mman import PROT_READ, PROT_WRITE, page_round_up
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.waiter import EVENT_IN, Queue
from pkg.sentry.mm.mappable import MappingIdentity
from pkg.sentry.mm.syscalls import MmapOpts

if TYPE_CHECKING:
    from pkg.sentry.mm.memory_manager import MemoryManager

log = logging.getLogger(__name__)

# struct aio_ring: id, nr, head, tail, magic, compat_features,
# incompat_features, header_length.
_HEADER = struct.Struct("<8I")
_HEAD_OFFSET = 8
_TAIL_OFFSET = 12
AIO_RING_MAGIC = 0xA10A10A1
# struct io_event: data, obj, res, res2.
IO_EVENT = struct.Struct("<QQqq")
# fs.aio-max-nr's default: the most events all contexts may ask for.
AIO_MAX_NR = 0x10000
# How /proc/[pid]/maps names a ring: an unlinked file of the aio
# filesystem, an anonymous device, one inode per ring.
_AIO_DEV = 0x14
_ring_inos = itertools.count(1)


class AIOContext:
    """AIOContext is one io_setup(2) context: its ring and the requests
    that may still complete into it."""

    def __init__(self, addr: int, size: int, nr: int, max_reqs: int) -> None:
        self.addr = addr
        self.size = size
        # Ring slots. One is always left empty, as in Linux, so at most
        # nr - 1 requests may be outstanding (submitted, not reaped).
        self.nr = nr
        # The events io_setup was asked for, which count against
        # AIO_MAX_NR.
        self.max_reqs = max_reqs
        self.mu = threading.Lock()
        self.outstanding = 0
        self.dead = False
        # Notified with EVENT_IN when an event lands.
        self.queue = Queue()

    def _slot(self, i: int) -> int:
        return self.addr + _HEADER.size + i * IO_EVENT.size

    def reserve(self) -> None:
        """Takes a place for one request.

        Raises:
            SyscallError: EAGAIN when max_reqs are already outstanding.
        """
        with self.mu:
            if self.outstanding >= self.nr - 1:
                raise SyscallError(errno.EAGAIN)
            self.outstanding += 1

    def unreserve(self) -> None:
        """Gives back the place of a request that was not submitted."""
        with self.mu:
            self.outstanding -= 1

    def complete(self, mm: MemoryManager, event: tuple[int, int, int, int]) -> None:
        """Writes a completion (data, obj, res, res2) at the ring's tail.

        Unlike Linux, which writes through its own mapping of the ring's
        pages, the sentry writes through the application's: a program
        that unmapped or write-protected its ring loses the event."""
        try:
            with self.mu:
                tail = mm.read_u32(self.addr + _TAIL_OFFSET) % self.nr
                mm.copy_out(self._slot(tail), IO_EVENT.pack(*event))
                mm.copy_out(
                    self.addr + _TAIL_OFFSET, struct.pack("<I", (tail + 1) % self.nr)
                )
        except SyscallError:
            log.debug("aio: ring at %#x is gone; event dropped", self.addr)
        self.queue.notify(EVENT_IN)

    def take(self, mm: MemoryManager, n: int) -> list[bytes]:
        """Removes up to n completions from the head (aio_read_events_ring);
        head and tail are taken modulo the ring's size, whatever the
        program wrote there."""
        with self.mu:
            head = mm.read_u32(self.addr + _HEAD_OFFSET) % self.nr
            tail = mm.read_u32(self.addr + _TAIL_OFFSET) % self.nr
            out = []
            while head != tail and len(out) < n:
                out.append(mm.copy_in(self._slot(head), IO_EVENT.size))
                head = (head + 1) % self.nr
            if out:
                mm.copy_out(self.addr + _HEAD_OFFSET, struct.pack("<I", head))
                self.outstanding -= len(out)
            return out


def setup(mm: MemoryManager, nr_events: int, num_cpus: int) -> AIOContext:
    """Maps a ring for nr_events and registers its context (ioctx_alloc).

    Raises:
        SyscallError: EINVAL for too many events to describe, EAGAIN
            beyond AIO_MAX_NR, ENOMEM when there is no room for the ring.
    """
    # Linux doubles the request, at least four per CPU, because per-CPU
    # batches may hold half the slots.
    slots = max(nr_events, num_cpus * 4) * 2
    if slots > 0x10000000 // IO_EVENT.size:
        raise SyscallError(errno.EINVAL)
    with mm.mu:
        in_use = sum(c.max_reqs for c in mm.aio_contexts.values())
    if nr_events > AIO_MAX_NR or in_use + nr_events > AIO_MAX_NR:
        raise SyscallError(errno.EAGAIN)
    size = page_round_up(_HEADER.size + slots * IO_EVENT.size)
    addr = mm.mmap(
        MmapOpts(
            length=size,
            prot=PROT_READ | PROT_WRITE,
            private=False,
            identity=MappingIdentity(_AIO_DEV, next(_ring_inos), "/[aio] (deleted)"),
        )
    )
    nr = (size - _HEADER.size) // IO_EVENT.size
    ctx = AIOContext(addr, size, nr, nr_events)
    with mm.mu:
        ctx_id = len(mm.aio_contexts)
        mm.aio_contexts[addr] = ctx
    mm.copy_out(
        addr, _HEADER.pack(ctx_id, nr, 0, 0, AIO_RING_MAGIC, 1, 0, _HEADER.size)
    )
    return ctx


def lookup(mm: MemoryManager, ctx_id: int) -> AIOContext:
    """Returns the live context ctx_id names.

    Raises:
        SyscallError: EINVAL if there is none.
    """
    with mm.mu:
        ctx = mm.aio_contexts.get(ctx_id)
    if ctx is None or ctx.dead:
        raise SyscallError(errno.EINVAL)
    return ctx


def destroy(mm: MemoryManager, ctx_id: int) -> None:
    """Unregisters a context and unmaps its ring (kill_ioctx); requests
    complete at submission, so none is left to wait for.

    Raises:
        SyscallError: EINVAL if ctx_id names no live context.
    """
    with mm.mu:
        ctx = mm.aio_contexts.pop(ctx_id, None)
    if ctx is None:
        raise SyscallError(errno.EINVAL)
    ctx.dead = True
    ctx.queue.notify(EVENT_IN)
    mm.munmap(ctx.addr, ctx.size)
