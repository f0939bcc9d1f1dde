"""Waiting for events: waiter queues and the task's wake descriptor.

Kernel objects that a task can wait on (pipes, futexes, child exits, host
descriptors) notify a Queue with an event mask. A task that blocks registers an
Entry on the queues it waits on and then sleeps in Task.block, which polls the
task's own eventfd together with any host descriptors. Notifying an entry, or
interrupting the task (a signal, a kill), writes to that eventfd, so every
block is interruptible and nobody spins.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

# Event masks, as poll(2)'s.
EVENT_IN = 0x1
EVENT_PRI = 0x2
EVENT_OUT = 0x4
EVENT_ERR = 0x8
EVENT_HUP = 0x10
EVENT_NVAL = 0x20
EVENT_RDNORM = 0x40
EVENT_RDBAND = 0x80
EVENT_WRNORM = 0x100
EVENT_WRBAND = 0x200
EVENT_MSG = 0x400
EVENT_RDHUP = 0x2000
ALL_EVENTS = 0xFFFF_FFFF


class Entry:
    """Entry is one registration of interest in a Queue.

    `callback(mask)` runs with the queue's lock held whenever events
    intersecting `mask` are notified; it must not block.
    """

    __slots__ = ("callback", "mask")

    def __init__(self, callback: Callable[[int], None], mask: int = ALL_EVENTS) -> None:
        self.callback = callback
        self.mask = mask


class Queue:
    """Queue is a set of Entries waiting for events on one object."""

    __slots__ = ("_entries", "_mu")

    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._entries: list[Entry] = []

    def register(self, entry: Entry) -> None:
        """Adds entry to the queue."""
        with self._mu:
            self._entries.append(entry)

    def unregister(self, entry: Entry) -> None:
        """Removes entry if it is in the queue."""
        with self._mu, contextlib.suppress(ValueError):
            self._entries.remove(entry)

    def notify(self, mask: int) -> None:
        """Runs the callback of every entry interested in mask."""
        with self._mu:
            entries = list(self._entries)
        for e in entries:
            if e.mask & mask:
                e.callback(mask)

    def __bool__(self) -> bool:
        return bool(self._entries)
