"""EpollInstance: the file behind epoll_create(2) (fs/eventpoll.c).

An epoll instance has an interest list of items keyed by (file, descriptor
number), and a ready list. Each item registers a waiter Entry on its file;
when the file notifies an event the item asked for, the entry's callback
puts the item on the ready list and wakes the instance's own waiters
(epoll_wait callers, and poll(2) or epoll instances watching this one).
epoll_wait re-checks each item on the ready list: an item whose file is no
longer ready is dropped; a ready one is reported, then disabled
(EPOLLONESHOT), forgotten until the next notification (EPOLLET) or put back
at the tail to be checked again next time (level-triggered), which makes
ready items take turns when maxevents is small.

Items hold no reference on their file. A registration ends with
EPOLL_CTL_DEL or when the last reference to the file goes (a release hook on
the file), not when one of several descriptors of the file is closed, as
with Linux's eventpoll_release.

Host files (the sandbox's standard input and output) notify nothing: their
readiness is the host's. An instance watching host files registers their
host descriptors, edge-triggered, in a host epoll of its own. Before it
looks at its ready list it drains that host epoll, turning host edges into
item notifications, and while it waits it waits on the host epoll's
descriptor too; that descriptor is also the instance's own host_poll_fd, so
that an instance nested in another, or watched by poll(2), wakes its
watcher when a host file becomes ready.

Locks: `_mu` (ep->mtx) serialises changes to the interest list and scans
of the ready list; `_ready_mu` (ep->lock) guards the ready list alone and is
the only lock an item callback takes, so a file may notify while holding
its own locks. Readiness of nested instances is taken from outer to inner;
ELOOP keeps the nesting a tree.
"""

from __future__ import annotations

import contextlib
import select
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from pkg.abi.linux import epoll as EP
from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.anon.anon_inode import AnonFile
from pkg.sentry.kernel.waiter import EVENT_IN, EVENT_RDNORM, Entry, Queue
from pkg.sentry.vfs.file_description import FileDescription

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# Host events an item on a host file can be woken by; the item's own mask
# filters them, so the host registration never changes.
_HOST_EVENTS = (
    select.EPOLLIN
    | select.EPOLLOUT
    | select.EPOLLPRI
    | select.EPOLLRDHUP
    | select.EPOLLRDNORM
    | select.EPOLLRDBAND
    | select.EPOLLWRNORM
    | select.EPOLLWRBAND
    | select.EPOLLET
)

# Host events drained at once from a host epoll.
_HOST_BATCH = 64

# Serialises the nesting checks of EPOLL_CTL_ADD (epnested_mutex).
_nest_mu = threading.Lock()


class EpollItem:
    """EpollItem is one registration (struct epitem).

    Attributes:
        events: the EPOLL* events and flags asked for (with EPOLLERR and
            EPOLLHUP); only the flags remain once EPOLLONESHOT fired.
        data: the 64-bit value reported with the events.
    """

    __slots__ = ("data", "entry", "ep", "events", "fd", "file", "host_fd", "removed")

    def __init__(
        self, ep: EpollInstance, file: FileDescription, fd: int, events: int, data: int
    ) -> None:
        self.ep = ep
        self.file = file
        self.fd = fd
        self.events = events
        self.data = data
        self.entry = Entry(self.notify, events & ~EP.EP_PRIVATE_BITS)
        self.host_fd = -1
        self.removed = False

    def notify(self, mask: int) -> None:
        """The file's event callback (ep_poll_callback); runs with the
        file's own locks possibly held, so it takes only the ready list
        lock."""
        ep = self.ep
        if self.removed:
            return
        with ep._ready_mu:
            ep._ready[self] = None
        ep.queue.notify(EVENT_IN)

    def on_file_release(self) -> None:
        """Drops the registration when the file's last reference goes."""
        self.ep._remove(self)


class EpollInstance(AnonFile):
    """EpollInstance is an epoll file (struct eventpoll)."""

    __slots__ = (
        "_host_ep",
        "_host_items",
        "_interest",
        "_mu",
        "_ready",
        "_ready_mu",
        "_watchers",
        "queue",
    )

    NAME = "eventpoll"

    def __init__(self) -> None:
        super().__init__(F.O_RDWR)
        self._mu = threading.RLock()
        self._ready_mu = threading.Lock()
        self._interest: dict[tuple[FileDescription, int], EpollItem] = {}
        # An ordered set: dicts keep insertion order.
        self._ready: dict[EpollItem, None] = {}
        # Items of other instances that watch this one (the file's f_ep).
        self._watchers: dict[EpollItem, None] = {}
        self._host_ep: select.epoll | None = None
        self._host_items: dict[int, list[EpollItem]] = {}
        self.queue = Queue()

    def seek(self, t: Task, offset: int, whence: int) -> int:
        # noop_llseek.
        return 0

    # The interest list.

    def add(self, file: FileDescription, fd: int, events: int, data: int) -> None:
        """EPOLL_CTL_ADD: watches file under descriptor number fd.

        Preconditions: the caller holds references on file and on self, and
        has checked that file is epollable and is not self.

        Raises:
            SyscallError: EEXIST if (file, fd) is registered already, ELOOP
                if file is an epoll instance that would close a loop or
                nest too deeply.
        """
        if isinstance(file, EpollInstance):
            with _nest_mu:
                if not _nesting_allowed(self, file):
                    raise SyscallError(errno.ELOOP)
                self._insert(file, fd, events, data)
        else:
            self._insert(file, fd, events, data)

    def target_file(self, fd: int, nth: int) -> FileDescription:
        """Returns the nth file watched under descriptor number fd, as
        kcmp(2)'s KCMP_EPOLL_TFD looks it up.

        Raises:
            SyscallError: ENOENT if there is none.
        """
        with self._mu:
            files = [f for f, n in self._interest if n == fd]
        if nth >= len(files):
            raise SyscallError(errno.ENOENT)
        return files[nth]

    def _insert(self, file: FileDescription, fd: int, events: int, data: int) -> None:
        with self._mu:
            key = (file, fd)
            if key in self._interest:
                raise SyscallError(errno.EEXIST)
            item = EpollItem(self, file, fd, events | EP.EPOLLERR | EP.EPOLLHUP, data)
            self._interest[key] = item
            file.event_register(item.entry)
            file.add_release_hook(item, item.on_file_release)
            if isinstance(file, EpollInstance):
                file._watchers[item] = None
            host_fd = file.host_poll_fd()
            if host_fd >= 0:
                self._host_register(item, host_fd)
            ready = self._item_ready(item)
        if ready:
            item.notify(ready)

    def modify(self, file: FileDescription, fd: int, events: int, data: int) -> None:
        """EPOLL_CTL_MOD: replaces the events and data of a registration,
        re-arming an EPOLLONESHOT one.

        Raises:
            SyscallError: ENOENT if (file, fd) is not registered, EINVAL if
                it was registered with EPOLLEXCLUSIVE.
        """
        with self._mu:
            item = self._interest.get((file, fd))
            if item is None:
                raise SyscallError(errno.ENOENT)
            if item.events & EP.EPOLLEXCLUSIVE:
                raise SyscallError(errno.EINVAL)
            item.events = events | EP.EPOLLERR | EP.EPOLLHUP
            item.data = data
            item.entry.mask = item.events & ~EP.EP_PRIVATE_BITS
            ready = self._item_ready(item)
        if ready:
            item.notify(ready)

    def delete(self, file: FileDescription, fd: int) -> None:
        """EPOLL_CTL_DEL.

        Raises:
            SyscallError: ENOENT if (file, fd) is not registered.
        """
        with self._mu:
            item = self._interest.get((file, fd))
            if item is None:
                raise SyscallError(errno.ENOENT)
            self._remove_locked(item)

    def _remove(self, item: EpollItem) -> None:
        with self._mu:
            self._remove_locked(item)

    def _remove_locked(self, item: EpollItem) -> None:
        if item.removed:
            return
        item.removed = True
        self._interest.pop((item.file, item.fd), None)
        item.file.event_unregister(item.entry)
        item.file.remove_release_hook(item)
        if isinstance(item.file, EpollInstance):
            item.file._watchers.pop(item, None)
        if item.host_fd >= 0:
            self._host_unregister(item)
        with self._ready_mu:
            self._ready.pop(item, None)

    def release(self) -> None:
        with self._mu:
            for item in list(self._interest.values()):
                self._remove_locked(item)
            if self._host_ep is not None:
                self._host_ep.close()
                self._host_ep = None

    # Host files.

    def _host_register(self, item: EpollItem, host_fd: int) -> None:
        items = self._host_items.get(host_fd)
        if items is None:
            items = self._host_items[host_fd] = []
            self._host_epoll().register(host_fd, _HOST_EVENTS)
        items.append(item)
        item.host_fd = host_fd

    def _host_unregister(self, item: EpollItem) -> None:
        items = self._host_items.get(item.host_fd, [])
        if item in items:
            items.remove(item)
        if not items:
            self._host_items.pop(item.host_fd, None)
            if self._host_ep is not None:
                # If the host descriptor is already gone, so is its host
                # registration.
                with contextlib.suppress(OSError):
                    self._host_ep.unregister(item.host_fd)
        item.host_fd = -1

    def _host_epoll(self) -> select.epoll:
        if self._host_ep is None:
            self._host_ep = select.epoll()
        return self._host_ep

    def host_poll_fd(self) -> int:
        """The host epoll's descriptor: readable when a host file this
        instance watches had an event not yet taken into the ready list."""
        with self._mu:
            return self._host_epoll().fileno()

    def host_wait_fds(self) -> tuple[tuple[int, int], ...]:
        """The host descriptors epoll_wait must wait on besides the
        instance's own queue."""
        hep = self._host_ep
        if hep is None or not self._host_items:
            return ()
        return ((hep.fileno(), select.POLLIN),)

    def _pump_host_locked(self) -> None:
        """Turns pending host events into item notifications."""
        hep = self._host_ep
        if hep is None or not self._host_items:
            return
        while True:
            events = hep.poll(0, _HOST_BATCH)
            for host_fd, mask in events:
                for item in list(self._host_items.get(host_fd, ())):
                    if item.entry.mask & mask:
                        item.notify(mask)
            if len(events) < _HOST_BATCH:
                return

    # Readiness.

    @staticmethod
    def _item_ready(item: EpollItem) -> int:
        """Returns the events of item that are ready now (ep_item_poll)."""
        wanted = item.events & ~EP.EP_PRIVATE_BITS
        if not wanted:
            return 0
        return item.file.readiness(wanted) & wanted

    def readiness(self, mask: int) -> int:
        """Readable while some item on the ready list is really ready; the
        others are dropped from it (__ep_eventpoll_poll)."""
        with self._mu:
            self._pump_host_locked()
            with self._ready_mu:
                candidates = list(self._ready)
            for item in candidates:
                if item.removed:
                    continue
                if self._item_ready(item):
                    return mask & (EVENT_IN | EVENT_RDNORM)
                with self._ready_mu:
                    self._ready.pop(item, None)
        return 0

    def event_register(self, entry: Entry) -> None:
        self.queue.register(entry)

    def event_unregister(self, entry: Entry) -> None:
        self.queue.unregister(entry)

    # epoll_wait.

    def collect(
        self,
        maxevents: int,
        deliver: Callable[[list[tuple[int, int]]], int],
    ) -> int:
        """Reports up to maxevents ready items (ep_send_events).

        Args:
            maxevents: the most events to report.
            deliver: copies (events, data) pairs out and returns how many
                it placed; it raises only if it could place none.

        Returns:
            The number of events delivered, possibly 0.
        """
        with self._mu:
            self._pump_host_locked()
            with self._ready_mu:
                scan = list(self._ready)
                self._ready.clear()
            found: list[tuple[EpollItem, int, int]] = []
            requeue: list[EpollItem] = []
            rest = len(scan)
            for i, item in enumerate(scan):
                if len(found) >= maxevents:
                    rest = i
                    break
                if item.removed:
                    continue
                revents = self._item_ready(item)
                if not revents:
                    continue
                found.append((item, revents, item.events))
                if item.events & EP.EPOLLONESHOT:
                    item.events &= EP.EP_PRIVATE_BITS
                    item.entry.mask = 0
                elif not item.events & EP.EPOLLET:
                    requeue.append(item)
            leftover = scan[rest:]
            placed = len(found)
            try:
                if found:
                    placed = deliver([(ev, item.data) for item, ev, _ in found])
            except SyscallError:
                placed = 0
                raise
            finally:
                if placed < len(found):
                    # Not delivered: as if never taken from the list.
                    undelivered = []
                    for item, _ev, events in found[placed:]:
                        item.events = events
                        item.entry.mask = events & ~EP.EP_PRIVATE_BITS
                        undelivered.append(item)
                        if item in requeue:
                            requeue.remove(item)
                    leftover = undelivered + leftover
                with self._ready_mu:
                    merged = dict.fromkeys(leftover)
                    for item in self._ready:
                        merged[item] = None
                    for item in requeue:
                        merged[item] = None
                    self._ready = merged
            return placed


def _nesting_allowed(ep: EpollInstance, to: EpollInstance) -> bool:
    """Reports whether watching `to` from `ep` keeps the nesting a tree of
    at most EP_MAX_NESTS links in any chain (ep_loop_check).

    Preconditions: _nest_mu is held.
    """
    down: dict[EpollInstance, int] = {}

    def depth_below(e: EpollInstance, depth: int) -> int:
        if e in down:
            return down[e]
        result = 0
        for item in list(e._interest.values()):
            child = item.file
            if not isinstance(child, EpollInstance) or item.removed:
                continue
            if child is ep or depth > EP.EP_MAX_NESTS:
                result = EP.EP_MAX_NESTS + 1
            else:
                result = max(result, depth_below(child, depth + 1) + 1)
            if result > EP.EP_MAX_NESTS:
                break
        down[e] = result
        return result

    up: dict[EpollInstance, int] = {}

    def depth_above(e: EpollInstance) -> int:
        if e in up:
            return up[e]
        up[e] = 0
        result = 0
        for watcher in list(e._watchers):
            result = max(result, depth_above(watcher.ep) + 1)
        up[e] = result
        return result

    below = depth_below(to, 0)
    if below > EP.EP_MAX_NESTS:
        return False
    return below + 1 + depth_above(ep) <= EP.EP_MAX_NESTS


def new_epoll() -> EpollInstance:
    """Returns a new, empty epoll instance."""
    return EpollInstance()
