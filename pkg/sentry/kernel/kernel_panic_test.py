"""A panic stops the sandbox even when a task does not go away or the
host has no thread left to finish on."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from pkg.sentry.kernel import kernel as kernel_mod
from pkg.sentry.kernel.kernel import PANIC_EXIT_STATUS, Kernel


class _Stuck:
    """A task that ignores the SIGKILL kill_all sends it."""

    def interrupt(self) -> None:
        pass


def _fake_kernel() -> SimpleNamespace:
    stuck = _Stuck()
    tasks = SimpleNamespace(empty=threading.Event(), live_tasks=lambda: [stuck])
    k = SimpleNamespace(
        tasks=tasks,
        stats=SimpleNamespace(stop=lambda: None),
        timer_queue=SimpleNamespace(close=lambda: None),
        done=threading.Event(),
        panicked=False,
        exit_status=None,
        _mu=threading.Lock(),
        kill_all=lambda: None,
    )
    k._finish = lambda grace=None: Kernel._finish(k, grace)  # type: ignore[arg-type]
    return k


@pytest.fixture(autouse=True)
def _short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_mod, "_PANIC_GRACE_S", 0.2)


def test_panic_finishes_with_a_task_that_stays() -> None:
    k = _fake_kernel()
    Kernel.panic(k, "test")  # type: ignore[arg-type]
    assert k.done.wait(10)
    assert k.exit_status == PANIC_EXIT_STATUS << 8


def test_panic_finishes_without_a_host_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_thread(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    k = _fake_kernel()
    start = time.monotonic()
    Kernel.panic(k, "test")  # type: ignore[arg-type]
    # Finished on the caller's thread, after the grace period.
    assert k.done.is_set()
    assert time.monotonic() - start >= 0.2
