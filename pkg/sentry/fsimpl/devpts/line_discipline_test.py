"""Tests of LineDiscipline against n_tty's behaviour: canonical editing,
echo, signals, raw mode, output processing, flow control and blocking."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from pkg.abi.linux import errno
from pkg.abi.linux import signal as S
from pkg.abi.linux import termios as T
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.devpts.line_discipline import QUEUE_BYTES, LineDiscipline
from pkg.sentry.kernel.limits import LimitSet
from pkg.sentry.kernel.signals import SignalHandlers
from pkg.sentry.kernel.task import Task
from pkg.sentry.kernel.thread_group import ThreadGroup
from pkg.sentry.kernel.waiter import EVENT_IN, EVENT_OUT


@pytest.fixture
def task() -> Iterator[Task]:
    tg = ThreadGroup(None, 1, SignalHandlers(), LimitSet(), None)  # type: ignore[arg-type]
    t = Task(None, 1, tg, None, None, None, None, None, "test")  # type: ignore[arg-type]
    yield t
    t.close()


@pytest.fixture
def signals() -> list[int]:
    return []


@pytest.fixture
def ld(signals: list[int]) -> LineDiscipline:
    return LineDiscipline(signals.append)


def _type(ld: LineDiscipline, task: Task, data: bytes) -> None:
    assert ld.master_write(task, data, nonblocking=True) == len(data)


def _screen(ld: LineDiscipline, task: Task) -> bytes:
    try:
        return ld.master_read(task, 1 << 20, nonblocking=True)
    except SyscallError:
        return b""


def _read(ld: LineDiscipline, task: Task, n: int = 4096) -> bytes:
    return ld.replica_read(task, n, nonblocking=True)


def _raw(ld: LineDiscipline, vmin: int = 1, vtime: int = 0) -> None:
    """cfmakeraw(3), with VMIN and VTIME."""
    tio = ld.get_termios()
    tio.iflag &= ~(T.IGNBRK | T.BRKINT | T.PARMRK | T.ISTRIP | T.INLCR)
    tio.iflag &= ~(T.IGNCR | T.ICRNL | T.IXON)
    tio.oflag &= ~T.OPOST
    tio.lflag &= ~(T.ECHO | T.ECHONL | T.ICANON | T.ISIG | T.IEXTEN)
    tio.cc[T.VMIN] = vmin
    tio.cc[T.VTIME] = vtime
    ld.set_termios(tio)


def _until(cond: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not cond():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.001)


def test_canonical_line_and_echo(ld: LineDiscipline, task: Task) -> None:
    _type(ld, task, b"ab")
    assert ld.replica_readiness(EVENT_IN) == 0
    with pytest.raises(SyscallError) as e:
        _read(ld, task)
    assert e.value.errno == errno.EAGAIN
    _type(ld, task, b"c\r")
    assert ld.replica_readiness(EVENT_IN) == EVENT_IN
    assert ld.input_readable_bytes() == 4
    # ICRNL made the carriage return a newline; ONLCR echoes it as CR LF.
    assert _read(ld, task) == b"abc\n"
    assert _screen(ld, task) == b"abc\r\n"


def test_a_read_takes_at_most_one_line(ld: LineDiscipline, task: Task) -> None:
    _type(ld, task, b"one\ntwo\n")
    assert _read(ld, task, 2) == b"on"
    assert _read(ld, task) == b"e\n"
    assert _read(ld, task) == b"two\n"


def test_erase_kill_and_word_erase(ld: LineDiscipline, task: Task) -> None:
    _type(ld, task, b"ab\x7fc\n")
    assert _read(ld, task) == b"ac\n"
    assert _screen(ld, task) == b"ab\b \bc\r\n"
    _type(ld, task, b"xyz\x15d\n")
    assert _read(ld, task) == b"d\n"
    assert _screen(ld, task) == b"xyz" + b"\b \b" * 3 + b"d\r\n"
    _type(ld, task, b"foo bar\x17baz\n")
    assert _read(ld, task) == b"foo baz\n"


def test_eof(ld: LineDiscipline, task: Task) -> None:
    _type(ld, task, b"ab\x04")
    assert _read(ld, task) == b"ab"
    _type(ld, task, b"\x04")
    assert _read(ld, task) == b""
    # The EOF character is not echoed.
    assert _screen(ld, task) == b"ab"


def test_interrupt_signals_and_flushes(
    ld: LineDiscipline, task: Task, signals: list[int]
) -> None:
    _type(ld, task, b"partial\x03after\n")
    assert signals == [S.SIGINT]
    # The partial line is gone; what followed ^C is read.
    assert _read(ld, task) == b"after\n"
    assert _screen(ld, task) == b"^Cafter\r\n"
    _type(ld, task, b"\x1c\x1a")
    assert signals == [S.SIGINT, S.SIGQUIT, S.SIGTSTP]


def test_literal_next(ld: LineDiscipline, task: Task, signals: list[int]) -> None:
    _type(ld, task, b"\x16\x03\n")
    assert signals == []
    assert _read(ld, task) == b"\x03\n"
    assert _screen(ld, task) == b"^\b^C\r\n"


def test_line_length_is_limited(ld: LineDiscipline, task: Task) -> None:
    _type(ld, task, b"x" * 5000 + b"\n")
    line = _read(ld, task, 10000)
    assert line == b"x" * (T.N_TTY_BUF_SIZE - 1) + b"\n"


def test_raw_mode(ld: LineDiscipline, task: Task) -> None:
    _type(ld, task, b"half")
    _raw(ld)
    # Leaving canonical mode makes the edited line readable.
    assert _read(ld, task) == b"half"
    _type(ld, task, b"\x03\r")
    assert _read(ld, task) == b"\x03\r"


def test_raw_input_waits_for_room(ld: LineDiscipline, task: Task) -> None:
    _raw(ld)
    data = bytes(range(256)) * 40
    _type(ld, task, data)
    got = b""
    while len(got) < len(data):
        got += _read(ld, task, 1000)
    assert got == data


def test_vmin_zero_vtime_zero_does_not_wait(ld: LineDiscipline, task: Task) -> None:
    _raw(ld, vmin=0, vtime=0)
    assert ld.replica_read(task, 10, nonblocking=False) == b""


def test_vmin_zero_vtime_times_out(ld: LineDiscipline, task: Task) -> None:
    _raw(ld, vmin=0, vtime=1)
    assert ld.replica_read(task, 10, nonblocking=False) == b""


def test_switch_to_canonical_makes_one_line(ld: LineDiscipline, task: Task) -> None:
    _raw(ld)
    _type(ld, task, b"abc")
    tio = ld.get_termios()
    tio.lflag |= T.ICANON
    ld.set_termios(tio)
    assert _read(ld, task) == b"abc"


def test_output_processing(ld: LineDiscipline, task: Task) -> None:
    assert ld.replica_write(task, b"a\nb", nonblocking=True) == 3
    assert ld.output_queued_bytes() == 4
    assert _screen(ld, task) == b"a\r\nb"
    tio = ld.get_termios()
    tio.oflag |= T.XTABS
    ld.set_termios(tio)
    ld.replica_write(task, b"\tx\n\tab\tc", nonblocking=True)
    # The column was 1 ("b"): the first tab is 7 spaces.
    assert _screen(ld, task) == b" " * 7 + b"x\r\n" + b" " * 8 + b"ab" + b" " * 6 + b"c"
    tio.oflag = 0
    ld.set_termios(tio)
    ld.replica_write(task, b"raw\n", nonblocking=True)
    assert _screen(ld, task) == b"raw\n"


def test_flow_control(ld: LineDiscipline, task: Task) -> None:
    _type(ld, task, b"\x13")
    ld.replica_write(task, b"held", nonblocking=True)
    assert ld.master_readiness(EVENT_IN) == 0
    _type(ld, task, b"\x11")
    assert _screen(ld, task) == b"held"
    # The flow control characters were not input.
    assert ld.input_readable_bytes() == 0


def test_output_fills_and_blocks(ld: LineDiscipline, task: Task) -> None:
    tio = ld.get_termios()
    tio.oflag = 0
    ld.set_termios(tio)
    written = 0
    while True:
        try:
            written += ld.replica_write(task, b"y" * 4096, nonblocking=True)
        except SyscallError as e:
            assert e.errno == errno.EAGAIN
            break
    assert written >= QUEUE_BYTES
    assert ld.replica_readiness(EVENT_OUT) == 0
    assert ld.master_readiness(EVENT_IN) == EVENT_IN
    _screen(ld, task)
    assert ld.replica_readiness(EVENT_OUT) == EVENT_OUT


def test_blocking_read_woken_by_the_master(ld: LineDiscipline, task: Task) -> None:
    typist = Task(None, 2, task.tg, None, None, None, None, None, "typist")  # type: ignore[arg-type]
    got: list[bytes] = []
    th = threading.Thread(
        target=lambda: got.append(ld.replica_read(task, 100, nonblocking=False))
    )
    th.start()
    _until(lambda: bool(ld.replica_queue))
    ld.master_write(typist, b"partial", nonblocking=False)
    assert th.is_alive()
    ld.master_write(typist, b"\n", nonblocking=False)
    th.join(10)
    assert got == [b"partial\n"]
    typist.close()


def test_blocked_read_is_interruptible(ld: LineDiscipline, task: Task) -> None:
    errors: list[int] = []

    def read() -> None:
        try:
            ld.replica_read(task, 10, nonblocking=False)
        except SyscallError as e:
            errors.append(e.errno)

    th = threading.Thread(target=read)
    th.start()
    _until(lambda: bool(ld.replica_queue))
    task.interrupt()
    th.join(10)
    assert errors == [errno.ERESTARTSYS]


def test_window_size_change_signals(ld: LineDiscipline, signals: list[int]) -> None:
    ld.set_winsize(T.Winsize(24, 80))
    ld.set_winsize(T.Winsize(24, 80))
    assert signals == [S.SIGWINCH]
    assert ld.winsize.pack() == T.Winsize(24, 80).pack()


def test_flush(ld: LineDiscipline, task: Task) -> None:
    _type(ld, task, b"line\n")
    ld.replica_write(task, b"out", nonblocking=True)
    ld.flush(T.TCIOFLUSH)
    assert ld.input_readable_bytes() == 0
    assert ld.output_queued_bytes() == 0
    with pytest.raises(SyscallError) as e:
        ld.flush(7)
    assert e.value.errno == errno.EINVAL
    assert ld.master_readiness(EVENT_OUT) == EVENT_OUT
