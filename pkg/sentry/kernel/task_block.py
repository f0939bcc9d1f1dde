"""Killable waits: sleeping that only a fatal signal ends.

Most blocking is interruptible (Task.block). A few waits in Linux are only
killable (TASK_KILLABLE): the parent of a vfork child waiting for it to exec
or exit, and execve waiting for the other threads of its process to die.
Ordinary signals stay pending meanwhile and are delivered afterwards.
"""

from __future__ import annotations

import contextlib
import os
import select
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task


def block_killable(t: Task, done: Callable[[], bool]) -> bool:
    """Sleeps until done() holds or t is killed.

    Whoever makes done() true must call t.wake() afterwards. Called on t's
    own thread.

    Returns:
        True if done() holds, False if t must exit instead.
    """
    p = select.poll()
    p.register(t.wake_fd, select.POLLIN)
    while True:
        if done():
            return True
        if t.exiting or t.tg.exiting:
            return False
        t.cpu.nvcsw += 1
        t.cpu.waiting = True
        try:
            p.poll()
        finally:
            t.cpu.waiting = False
        # An interrupt for an ordinary signal also lands here; t.interrupted
        # stays set, so the run loop delivers the signal afterwards.
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(t.wake_fd)
