"""Tests of the load average arithmetic and the counters of sched_stats."""

from __future__ import annotations

import math

from pkg.sentry.kernel.sched_stats import LOAD_FREQ_SECS, LoadAverage, TaskIO


def test_load_average_starts_at_zero() -> None:
    assert LoadAverage().text() == "0.00 0.00 0.00"


def test_load_average_follows_the_exponential_decay() -> None:
    load = LoadAverage()
    samples = 12  # one minute
    for _ in range(samples):
        load.sample(2)
    one, five, fifteen = (float(x) for x in load.text().split())
    # 2 * (1 - e^(-t/T)) for t = 1 minute and T = 1, 5, 15 minutes; the
    # fixed point rounds each step up while the load grows.
    t = samples * LOAD_FREQ_SECS / 60
    assert abs(one - 2 * (1 - math.exp(-t / 1))) < 0.05
    assert abs(five - 2 * (1 - math.exp(-t / 5))) < 0.05
    assert abs(fifteen - 2 * (1 - math.exp(-t / 15))) < 0.05
    assert one > five > fifteen > 0


def test_load_average_settles_on_a_steady_load() -> None:
    load = LoadAverage()
    for _ in range(1000):
        load.sample(3)
    assert load.text() == "3.00 3.00 3.00"
    for _ in range(1000):
        load.sample(0)
    assert load.text() == "0.00 0.00 0.00"


def test_task_io_adds() -> None:
    a = TaskIO()
    a.rchar, a.wchar, a.syscr, a.syscw = 1, 2, 3, 4
    b = TaskIO()
    b.add(a)
    b.add(a)
    assert (b.rchar, b.wchar, b.syscr, b.syscw) == (2, 4, 6, 8)
