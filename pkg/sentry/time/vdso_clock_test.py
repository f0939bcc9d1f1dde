"""Tests of the vDSO clock's parameters: what the vDSO would compute from
them follows the host's clock, never goes backwards across updates, and
the page says "not valid" until the rate is known."""

from __future__ import annotations

import struct
import time

import pytest

from pkg.sentry.pgalloc.memory_file import MemoryFile
from pkg.sentry.time import vdso_clock
from pkg.sentry.time.vdso_clock import FLAG_CLOCK_VALID, SHIFT, VdsoClock


def read_params(mf: MemoryFile, offset: int) -> tuple[int, ...]:
    # seq, flags, tsc_base, mono_base, mult, shift, real_offset, boot_offset
    return struct.unpack_from("<QQQqQQqq", mf.view, offset)


def vdso_monotonic(mf: MemoryFile, offset: int, tsc: int) -> int | None:
    seq, flags, tsc_base, mono_base, mult, shift, _, _ = read_params(mf, offset)
    assert seq % 2 == 0
    if not flags & FLAG_CLOCK_VALID:
        return None
    return mono_base + (((tsc - tsc_base) * mult) >> shift)


@pytest.fixture
def clock():
    if vdso_clock._tsc is None or not vdso_clock._tsc.invariant_tsc():
        pytest.skip("no invariant TSC")
    mf = MemoryFile(size=1 << 24)
    offset = mf.allocate(4096)
    yield mf, offset, VdsoClock(mf, offset, num_cpus=2)
    mf.close()


def test_not_valid_until_the_rate_is_known(clock) -> None:
    mf, offset, c = clock
    assert vdso_monotonic(mf, offset, 0) is None
    c.update()
    assert vdso_monotonic(mf, offset, 0) is None


def test_follows_the_host_clock_and_never_goes_back(clock) -> None:
    mf, offset, c = clock
    tsc = vdso_clock._tsc
    c.update()
    time.sleep(0.25)
    c.update()
    last = 0
    for _ in range(5):
        for _ in range(20):
            t, mono, _ = tsc.sample()
            got = vdso_monotonic(mf, offset, t)
            assert got is not None
            # Within 50 microseconds of the host's CLOCK_MONOTONIC.
            assert abs(got - mono) < 50_000, (got, mono)
            assert got >= last
            last = got
            time.sleep(0.005)
        c.update()
    assert read_params(mf, offset)[5] == SHIFT


def test_cpu_table_numbers_the_allowed_cpus(clock) -> None:
    mf, offset, _ = clock
    table = struct.unpack_from("<1024H", mf.view, offset + 8 + 56 + 64)
    numbered = [v for v in table if v]
    assert numbered and set(numbered) <= {1, 2}
