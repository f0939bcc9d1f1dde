"""The vDSO's clock: the parameters in the vvar page that let application
code read CLOCK_MONOTONIC, CLOCK_REALTIME and CLOCK_BOOTTIME from the CPU's
time-stamp counter (TSC) without a system call.

The sandbox's clocks are the host's (sys_time.py), so the vDSO must agree
with what the sentry's clock_gettime returns. Applications compute

    monotonic = mono_base + ((rdtsc() - tsc_base) * mult >> SHIFT)
    realtime = monotonic + real_offset
    boottime = monotonic + boot_offset

and the sentry keeps that line on the host's clock: it samples (TSC, host
CLOCK_MONOTONIC, CLOCK_REALTIME) together (the _tsc extension), estimates
the TSC rate over an ever longer baseline, and every UPDATE_SECONDS
re-anchors the line where the application's clock is at that moment, never
behind it, with a slope that brings it back onto the host's clock by the
next update. So the vDSO's CLOCK_MONOTONIC never goes backwards, and stays
within a few microseconds of the host's.

TODO(#6): CLOCK_REALTIME is CLOCK_MONOTONIC plus the offset of the last
sample, so a step or slew of the host's wall clock reaches the vDSO only at
the next update (up to UPDATE_SECONDS late); CLOCK_MONOTONIC_RAW, CLOCK_TAI
and clock_getres go to the system call.

Until two samples are far enough apart to know the rate, and on CPUs whose
TSC rate is not constant, the page says "not valid" and the vDSO makes the
system call.

The page is published under a sequence count: odd while the sentry writes,
so a reader that saw an odd or changed count reads again. x86 keeps stores
in order, so plain writes in order suffice.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time

from pkg.sentry.pgalloc.memory_file import MemoryFile

log = logging.getLogger(__name__)

try:
    from pkg.sentry.time import _tsc
except ImportError:  # pragma: no cover - the extension is always built
    _tsc = None

# The layout of struct vvar in pkg/sentry/loader/vdso/vdso.c.
_SEQ = struct.Struct("<Q")
_FIELDS = struct.Struct("<QQqQQqq")  # flags .. boot_offset, after seq
_FIELDS_OFFSET = 8
_CPU_TABLE_OFFSET = 8 + _FIELDS.size + 8 * 8
MAX_CPUS = 1024

FLAG_CLOCK_VALID = 1
FLAG_CPU_VALID = 2

SHIFT = 32
UPDATE_SECONDS = 1.0
# The first rate estimate needs this much of a baseline.
_MIN_BASELINE_NS = 50_000_000
# How far the slope may stray from the measured rate to steer the vDSO's
# clock back onto the host's (parts per million).
_MAX_STEER_PPM = 500


class VdsoClock:
    """VdsoClock keeps the vvar page's clock parameters current.

    Create it with the page's MemoryFile offset; `start()` runs the updater
    thread, `stop()` ends it.
    """

    def __init__(self, mf: MemoryFile, offset: int, num_cpus: int) -> None:
        self.mf = mf
        self.offset = offset
        self.num_cpus = num_cpus
        self.usable = _tsc is not None and _tsc.invariant_tsc()
        self.cpu_valid = _tsc is not None and _tsc.has_rdtscp()
        self._seq = 0
        self._first: tuple[int, int, int] | None = None
        # The line currently published: (tsc_base, mono_base, mult).
        self._line: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_cpu_table()
        self._publish(0, 0, 0, 0, 0)

    def _write_cpu_table(self) -> None:
        # The same numbering as getcpu(2) (sys_sched.py): the sandbox's CPU
        # of a host CPU is its index among the sentry's allowed CPUs.
        table = [0] * MAX_CPUS
        for i, host in enumerate(sorted(os.sched_getaffinity(0))):
            if host < MAX_CPUS:
                table[host] = i % self.num_cpus + 1
        self.mf.write(
            self.offset + _CPU_TABLE_OFFSET, struct.pack(f"<{MAX_CPUS}H", *table)
        )

    def _publish(
        self, tsc_base: int, mono_base: int, mult: int, real: int, boot: int
    ) -> None:
        flags = FLAG_CPU_VALID if self.cpu_valid else 0
        if mult:
            flags |= FLAG_CLOCK_VALID
        view = self.mf.view
        self._seq += 1
        _SEQ.pack_into(view, self.offset, self._seq)
        _FIELDS.pack_into(
            view,
            self.offset + _FIELDS_OFFSET,
            flags,
            tsc_base,
            mono_base,
            mult,
            SHIFT,
            real,
            boot,
        )
        self._seq += 1
        _SEQ.pack_into(view, self.offset, self._seq)

    def update(self) -> None:
        """Takes a sample and re-anchors the published line on it."""
        if not self.usable:
            return
        tsc, mono, real = _tsc.sample()
        boot = _boot_offset()
        if self._first is None:
            self._first = (tsc, mono, real)
            return
        tsc0, mono0, _ = self._first
        if mono - mono0 < _MIN_BASELINE_NS or tsc <= tsc0:
            return
        # Nanoseconds per TSC tick, as a 32.32 fixed-point number, over the
        # whole baseline so far.
        rate = ((mono - mono0) << SHIFT) // (tsc - tsc0)
        base = mono
        if self._line is not None:
            line_tsc, line_mono, line_mult = self._line
            now = line_mono + (((tsc - line_tsc) * line_mult) >> SHIFT)
            # Never step the application's clock back: if it is ahead, keep
            # it where it is and slow it down until it is back on the host's.
            if now > mono:
                base = now
        # The slope that reaches the host's clock one interval from now.
        interval = int(UPDATE_SECONDS * 1e9)
        mult = (mono + interval - base) * rate // interval
        steer = rate * _MAX_STEER_PPM // 1_000_000
        mult = max(rate - steer, min(rate + steer, mult))
        self._line = (tsc, base, mult)
        self._publish(tsc, base, mult, real - mono, boot)

    def start(self) -> None:
        """Starts the updater thread (a no-op when the TSC cannot be used)."""
        if not self.usable:
            log.info("vdso: the TSC rate is not invariant; clocks use syscalls")
            return
        self.update()
        self._thread = threading.Thread(
            target=self._run, name="vdso-clock", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        # A first rate soon, then one update a second.
        self._stop.wait(_MIN_BASELINE_NS / 1e9)
        while not self._stop.is_set():
            try:
                self.update()
            # Whatever goes wrong, the vDSO can fall back on system calls:
            # never take the sandbox down for it.
            except Exception:
                log.exception("vdso: clock update failed; clocks use syscalls")
                self._publish(0, 0, 0, 0, 0)
                return
            self._stop.wait(UPDATE_SECONDS)

    def stop(self) -> None:
        """Stops the updater thread."""
        self._stop.set()


def _boot_offset() -> int:
    # CLOCK_BOOTTIME - CLOCK_MONOTONIC: the time the host spent suspended.
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME) - time.clock_gettime_ns(
        time.CLOCK_MONOTONIC
    )
