"""Timers: the kernel timer thread, interval timers and POSIX timers.

One host thread per kernel (TimerQueue) runs callbacks at monotonic
deadlines kept in a heap; it sleeps on a condition variable until the
earliest deadline or until a new, earlier one is scheduled, so nothing spins.
Wall-clock timers (ITIMER_REAL, alarm, POSIX timers on CLOCK_REALTIME,
CLOCK_MONOTONIC, CLOCK_BOOTTIME...) are entries in that heap; a deadline on
CLOCK_REALTIME is converted to the monotonic clock when armed.

CPU-time timers (ITIMER_VIRTUAL, ITIMER_PROF, POSIX timers and sleeps on
CPU-time clocks) cannot be scheduled in advance: CPU time advances only while
the application runs. While any is armed, a periodic tick on the timer
thread (CPUTimerTicker, every TICK_NSEC as Linux's scheduler tick) reads the
clocks (cputime.py) and fires what has expired.

Firing a timer sends its signal through task_signals. A periodic POSIX
timer is not rescheduled while its signal is queued: when the signal is
dequeued the timer counts the periods missed meanwhile as overruns and
rearms, as Linux's posixtimer_rearm does, so a timer whose signal is blocked
costs nothing.

Locks: a ThreadGroupTimers.mu is taken inside a signal lock (when a timer
signal is dequeued) and never the other way round: firing releases it
before sending. The TimerQueue lock is innermost.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pkg.abi.linux import signal as S
from pkg.abi.linux import time as T
from pkg.sentry.kernel.cputime import CPUClock
from pkg.sentry.kernel.signals import SignalInfo
from pkg.sentry.kernel.task_signals import send_signal

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.thread_group import ThreadGroup

log = logging.getLogger(__name__)

# The longest single wait of the timer thread; a later deadline is reached
# in several (threading.TIMEOUT_MAX is the bound).
_MAX_WAIT_SECS = 86400.0

# A periodic timer whose signal is dropped (ignored) is rearmed at most this
# often, so that a tiny interval cannot keep the timer thread busy.
_MIN_IGNORED_PERIOD_NS = T.TICK_NSEC
# ITIMER_REAL fires at most this often. Unlike Linux, which would send
# SIGALRM at any rate the hardware allows, a shorter interval is stretched.
_MIN_REAL_PERIOD_NS = 100_000


def monotonic_ns() -> int:
    """The clock every TimerQueue deadline is on."""
    return time.monotonic_ns()


class TimerHandle:
    """TimerHandle is one scheduled callback; cancel it through its queue."""

    __slots__ = ("cancelled", "deadline", "fn")

    def __init__(self, deadline: int, fn: Callable[[], None]) -> None:
        self.deadline = deadline
        self.fn = fn
        self.cancelled = False


class TimerQueue:
    """TimerQueue runs callbacks at monotonic deadlines on one thread.

    Callbacks run on the queue's thread without its lock held; they must
    not block. An exception in a callback is a sentry bug: it is logged and
    `on_error` is called.
    """

    def __init__(self, on_error: Callable[[str], None] | None = None) -> None:
        self._cv = threading.Condition(threading.Lock())
        self._heap: list[tuple[int, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._cancelled = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._on_error = on_error

    def schedule(self, deadline: int, fn: Callable[[], None]) -> TimerHandle:
        """Runs fn at or soon after the monotonic time deadline (ns)."""
        h = TimerHandle(deadline, fn)
        with self._cv:
            if self._closed:
                return h
            first = not self._heap or deadline < self._heap[0][0]
            heapq.heappush(self._heap, (deadline, next(self._seq), h))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="kernel-timers", daemon=True
                )
                self._thread.start()
            elif first:
                self._cv.notify()
        return h

    def cancel(self, h: TimerHandle | None) -> None:
        """Makes h not run if it has not started yet."""
        if h is None or h.cancelled:
            return
        with self._cv:
            h.cancelled = True
            self._cancelled += 1
            if self._cancelled > 64 and self._cancelled > len(self._heap) // 2:
                self._heap = [e for e in self._heap if not e[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def close(self) -> None:
        """Stops the thread; pending callbacks never run."""
        with self._cv:
            self._closed = True
            self._heap.clear()
            self._cv.notify()

    def pending(self) -> int:
        """Returns the number of callbacks scheduled and not cancelled."""
        with self._cv:
            return sum(1 for e in self._heap if not e[2].cancelled)

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:
            # A dead timer thread would silently stop every timer.
            log.exception("timers: the timer thread failed")
            if self._on_error is not None:
                self._on_error("timer thread failed")

    def _loop(self) -> None:
        while True:
            with self._cv:
                while True:
                    if self._closed:
                        return
                    while self._heap and self._heap[0][2].cancelled:
                        heapq.heappop(self._heap)
                        self._cancelled -= 1
                    if not self._heap:
                        self._cv.wait()
                        continue
                    wait = self._heap[0][0] - monotonic_ns()
                    if wait <= 0:
                        break
                    # Condition.wait refuses more than TIMEOUT_MAX; a later
                    # deadline is waited for in steps.
                    self._cv.wait(min(wait / 1e9, _MAX_WAIT_SECS))
                now = monotonic_ns()
                due = []
                while self._heap and self._heap[0][0] <= now:
                    _d, _s, h = heapq.heappop(self._heap)
                    if h.cancelled:
                        self._cancelled -= 1
                    else:
                        # Marked so that a late cancel does not count it.
                        h.cancelled = True
                        due.append(h)
            for h in due:
                try:
                    h.fn()
                except Exception:
                    log.exception("timers: callback %r failed", h.fn)
                    if self._on_error is not None:
                        self._on_error("timer callback failed")


class CPUTimer:
    """CPUTimer is anything checked against a CPU-time clock on each tick.

    A timer adds itself to the ticker when armed and removes itself when it
    need not be ticked anymore, both under its own lock, so that a tick
    never drops a timer that was rearmed meanwhile.
    """

    __slots__ = ()

    def cpu_tick(self) -> None:
        """Checks the clock and fires if the timer expired."""
        raise NotImplementedError


class CPUTimerTicker:
    """CPUTimerTicker ticks the armed CPU-time timers every TICK_NSEC.

    The tick is scheduled only while some CPU timer is armed.
    """

    def __init__(self, queue: TimerQueue) -> None:
        self._queue = queue
        self._mu = threading.Lock()
        self._timers: set[CPUTimer] = set()
        self._handle: TimerHandle | None = None

    def add(self, timer: CPUTimer) -> None:
        """Starts ticking timer."""
        with self._mu:
            self._timers.add(timer)
            if self._handle is None:
                self._handle = self._queue.schedule(
                    monotonic_ns() + T.TICK_NSEC, self._tick
                )

    def remove(self, timer: CPUTimer) -> None:
        """Stops ticking timer."""
        with self._mu:
            self._timers.discard(timer)

    def armed(self) -> int:
        """Returns how many timers are ticked."""
        with self._mu:
            return len(self._timers)

    def _tick(self) -> None:
        with self._mu:
            timers = list(self._timers)
        for timer in timers:
            timer.cpu_tick()
        with self._mu:
            if self._timers:
                self._handle = self._queue.schedule(
                    monotonic_ns() + T.TICK_NSEC, self._tick
                )
            else:
                self._handle = None


class RealITimer:
    """RealITimer is ITIMER_REAL, also alarm(2): SIGALRM to the process at
    a monotonic deadline, then every interval (it_real_fn)."""

    __slots__ = ("_handle", "expiry", "interval", "owner")

    def __init__(self, owner: ThreadGroupTimers) -> None:
        self.owner = owner
        # Monotonic deadline, 0 when disarmed.
        self.expiry = 0
        self.interval = 0
        self._handle: TimerHandle | None = None

    def get(self) -> tuple[int, int]:
        """Returns (remaining ns, interval ns); (0, interval) if disarmed."""
        with self.owner.mu:
            if not self.expiry:
                return 0, self.interval
            # An armed timer never reads as 0, which would mean disarmed.
            return max(1, self.expiry - monotonic_ns()), self.interval

    def set(self, value: int, interval: int) -> tuple[int, int]:
        """Arms the timer value ns from now (0 disarms); returns the old
        setting as get() would."""
        old = self.get()
        queue = self.owner.queue
        with self.owner.mu:
            queue.cancel(self._handle)
            self._handle = None
            self.interval = interval
            self.expiry = monotonic_ns() + value if value else 0
            if self.expiry:
                self._handle = queue.schedule(self.expiry, self._fire)
        return old

    def cancel(self) -> None:
        """Disarms the timer."""
        with self.owner.mu:
            self.owner.queue.cancel(self._handle)
            self._handle = None
            self.expiry = 0
            self.interval = 0

    def _fire(self) -> None:
        with self.owner.mu:
            if not self.expiry:
                return
            now = monotonic_ns()
            if self.interval:
                period = max(self.interval, _MIN_REAL_PERIOD_NS)
                missed = (now - self.expiry) // period
                self.expiry += (missed + 1) * period
                self._handle = self.owner.queue.schedule(self.expiry, self._fire)
            else:
                self.expiry = 0
                self._handle = None
        send_signal(self.owner.tg, None, SignalInfo(signo=S.SIGALRM, code=S.SI_KERNEL))


class CPUITimer(CPUTimer):
    """CPUITimer is ITIMER_VIRTUAL (user time, SIGVTALRM) or ITIMER_PROF
    (user and system time, SIGPROF) of a process (check_cpu_itimer)."""

    __slots__ = ("clock", "expiry", "interval", "owner", "signo")

    def __init__(self, owner: ThreadGroupTimers, which: int, signo: int) -> None:
        self.owner = owner
        self.clock = CPUClock(None, owner.tg, which)
        self.signo = signo
        # On self.clock, 0 when disarmed.
        self.expiry = 0
        self.interval = 0

    def get(self) -> tuple[int, int]:
        """Returns (remaining ns, interval ns)."""
        with self.owner.mu:
            expiry, interval = self.expiry, self.interval
        if not expiry:
            return 0, interval
        return max(1, expiry - self.clock.now_ns()), interval

    def set(self, value: int, interval: int) -> tuple[int, int]:
        """Arms the timer value ns of CPU time from now; returns the old
        setting."""
        old = self.get()
        now = self.clock.now_ns() if value else 0
        with self.owner.mu:
            self.interval = interval
            self.expiry = now + value if value else 0
            if value:
                self.owner.ticker.add(self)
            else:
                self.owner.ticker.remove(self)
        return old

    def cancel(self) -> None:
        """Disarms the timer."""
        with self.owner.mu:
            self.expiry = 0
            self.interval = 0
            self.owner.ticker.remove(self)

    def cpu_tick(self) -> None:
        with self.owner.mu:
            expiry = self.expiry
        if not expiry or self.clock.now_ns() < expiry:
            return
        with self.owner.mu:
            if self.expiry != expiry:
                return
            if self.interval:
                self.expiry += self.interval
            else:
                self.expiry = 0
                self.owner.ticker.remove(self)
        send_signal(self.owner.tg, None, SignalInfo(signo=self.signo, code=S.SI_KERNEL))


class PosixTimer(CPUTimer):
    """PosixTimer is one timer of timer_create(2).

    Its expiry is on the monotonic clock for wall clocks and on its CPU
    clock for CPU-time clocks; 0 when disarmed.
    """

    __slots__ = (
        "_handle",
        "clock",
        "cpu_clock",
        "expiry",
        "id",
        "interval",
        "notify",
        "overrun_accum",
        "overrun_last",
        "owner",
        "queued_info",
        "signo",
        "sigval",
        "target",
    )

    def __init__(
        self,
        owner: ThreadGroupTimers,
        timer_id: int,
        clock: int,
        cpu_clock: CPUClock | None,
        notify: int,
        signo: int,
        sigval: int,
        target: Task | None,
    ) -> None:
        self.owner = owner
        self.id = timer_id
        self.clock = clock
        self.cpu_clock = cpu_clock
        self.notify = notify
        self.signo = signo
        self.sigval = sigval
        # The thread to signal (SIGEV_THREAD_ID), else the process.
        self.target = target
        self.expiry = 0
        self.interval = 0
        self._handle: TimerHandle | None = None
        # The signal this timer has in a queue, if any.
        self.queued_info: SignalInfo | None = None
        # Expirations while the signal was queued, not yet reported.
        self.overrun_accum = 0
        # What timer_getoverrun reports: the overrun of the last delivery.
        self.overrun_last = 0

    def _now(self) -> int:
        if self.cpu_clock is not None:
            return self.cpu_clock.now_ns()
        return monotonic_ns()

    def get(self) -> tuple[int, int]:
        """Returns (remaining ns, interval ns) as timer_gettime reports."""
        now = self._now()
        with self.owner.mu:
            expiry, interval = self.expiry, self.interval
        if not expiry:
            return 0, interval
        if now < expiry:
            return expiry - now, interval
        if interval:
            return interval - (now - expiry) % interval, interval
        return 0, 0

    def set(self, value: int, interval: int, absolute: bool) -> tuple[int, int]:
        """Arms the timer (0 disarms) and returns the old setting.

        Args:
            value: the first expiry: an absolute time on the timer's clock
                (for wall clocks already converted to the monotonic clock)
                if absolute, else relative to now.
            interval: the period, 0 for a one-shot timer.
            absolute: see value.
        """
        old = self.get()
        now = self._now()
        with self.owner.mu:
            self.owner.queue.cancel(self._handle)
            self._handle = None
            self.interval = interval if value else 0
            self.overrun_accum = 0
            self.overrun_last = 0
            if not value:
                self.expiry = 0
            else:
                self.expiry = value if absolute else now + value
                # An expiry in the past fires at once.
                self.expiry = max(self.expiry, 1)
            self._arm_locked()
        return old

    def _arm_locked(self) -> None:
        if not self.expiry or self.notify == T.SIGEV_NONE:
            # A SIGEV_NONE timer only reports its time: nothing to fire.
            return
        if self.cpu_clock is not None:
            self.owner.ticker.add(self)
        else:
            self._handle = self.owner.queue.schedule(self.expiry, self._fire)

    def delete(self) -> None:
        """Disarms the timer for good and drops its queued signal."""
        with self.owner.mu:
            self.expiry = 0
            self.interval = 0
            self.owner.queue.cancel(self._handle)
            self._handle = None
            self.owner.ticker.remove(self)
        tg = self.owner.tg
        with tg.signal_handlers.mu:
            tg.pending.discard_from(self)
            for task in tg.tasks:
                task.pending.discard_from(self)
            self.queued_info = None

    def cpu_tick(self) -> None:
        with self.owner.mu:
            expiry = self.expiry
            if not expiry or self.queued_info is not None:
                # A periodic timer is ticked again once its signal is
                # dequeued (on_dequeue rearms it).
                self.owner.ticker.remove(self)
                return
        if self.cpu_clock.now_ns() < expiry:
            return
        self._fire()

    def _fire(self) -> None:
        with self.owner.mu:
            self._handle = None
            if not self.expiry:
                return
            if self.queued_info is not None:
                self.overrun_accum += 1
                return
            info = SignalInfo(
                signo=self.signo,
                code=S.SI_TIMER,
                timer_id=self.id,
                value=self.sigval,
                timer=self,
            )
            self.queued_info = info
            if not self.interval:
                self.expiry = 0
                self.owner.ticker.remove(self)
        if send_signal(self.owner.tg, self.target, info):
            return
        # Dropped (ignored, or the target is gone): a periodic timer goes on.
        with self.owner.mu:
            if self.queued_info is info:
                self.queued_info = None
            if self.interval and self.expiry:
                self._forward_locked(_MIN_IGNORED_PERIOD_NS)
                self._arm_locked()

    def _forward_locked(self, min_period: int = 0) -> int:
        """Moves a periodic expiry past now; returns the periods skipped."""
        now = self._now()
        period = max(self.interval, min_period)
        if now < self.expiry:
            return 0
        missed = (now - self.expiry) // period
        self.expiry += (missed + 1) * period
        return missed

    def on_dequeue(self, info: SignalInfo) -> None:
        with self.owner.mu:
            if info is not self.queued_info:
                return
            self.queued_info = None
            overrun = self.overrun_accum
            self.overrun_accum = 0
            if self.interval and self.expiry:
                overrun += self._forward_locked()
                self._arm_locked()
            self.overrun_last = min(overrun, T.DELAYTIMER_MAX)
            info.overrun = self.overrun_last

    def on_discard(self, info: SignalInfo) -> None:
        with self.owner.mu:
            if info is not self.queued_info:
                return
            self.queued_info = None
            if self.interval and self.expiry:
                self._forward_locked()
                self._arm_locked()


class ThreadGroupTimers:
    """ThreadGroupTimers holds a process's interval and POSIX timers.

    Created with the ThreadGroup; not inherited by fork. ITIMER_REAL
    survives execve, POSIX timers do not (on_exec).
    """

    __slots__ = ("mu", "next_id", "posix", "prof", "real", "tg", "virtual")

    def __init__(self, tg: ThreadGroup) -> None:
        self.tg = tg
        self.mu = threading.Lock()
        self.real = RealITimer(self)
        self.virtual = CPUITimer(self, T.CPUCLOCK_VIRT, S.SIGVTALRM)
        self.prof = CPUITimer(self, T.CPUCLOCK_PROF, S.SIGPROF)
        self.posix: dict[int, PosixTimer] = {}
        self.next_id = 0

    @property
    def queue(self) -> TimerQueue:
        """The kernel's timer thread."""
        return self.tg.kernel.timer_queue

    @property
    def ticker(self) -> CPUTimerTicker:
        """The kernel's CPU timer tick."""
        return self.tg.kernel.cpu_timers

    def itimer(self, which: int) -> RealITimer | CPUITimer:
        """Returns the ITIMER_* timer `which` (validated by the caller)."""
        if which == T.ITIMER_REAL:
            return self.real
        if which == T.ITIMER_VIRTUAL:
            return self.virtual
        return self.prof

    def add_posix(self, make: Callable[[int], PosixTimer]) -> PosixTimer:
        """Allocates the next timer id and registers make(id)."""
        with self.mu:
            # Ids increase and wrap at INT_MAX, skipping those in use.
            while self.next_id in self.posix:
                self.next_id = (self.next_id + 1) & 0x7FFFFFFF
            timer_id = self.next_id
            self.next_id = (self.next_id + 1) & 0x7FFFFFFF
            timer = make(timer_id)
            self.posix[timer_id] = timer
        return timer

    def get_posix(self, timer_id: int) -> PosixTimer | None:
        """Returns the POSIX timer with that id, or None."""
        with self.mu:
            return self.posix.get(timer_id)

    def delete_posix(self, timer_id: int) -> bool:
        """Deletes a POSIX timer; returns False if there is none."""
        with self.mu:
            timer = self.posix.pop(timer_id, None)
        if timer is None:
            return False
        timer.delete()
        return True

    def on_exec(self) -> None:
        """Deletes the POSIX timers, as execve does (exit_itimers)."""
        with self.mu:
            timers = list(self.posix.values())
            self.posix.clear()
        for timer in timers:
            timer.delete()

    def on_task_exit(self, t: Task) -> None:
        """Disarms the timers that signal a thread that is exiting."""
        with self.mu:
            timers = [p for p in self.posix.values() if p.target is t]
        for timer in timers:
            timer.set(0, 0, False)

    def on_exit(self) -> None:
        """Stops every timer of a process that has exited."""
        self.on_exec()
        self.real.cancel()
        self.virtual.cancel()
        self.prof.cancel()
