"""LineDiscipline: the terminal line discipline between the two ends of a
pseudo-terminal (drivers/tty/n_tty.c).

Bytes written to the master are terminal input: the discipline processes
them by the termios of the replica and queues them for the replica to read.
Bytes written to the replica are terminal output: processed (OPOST) and
queued for the master to read. Input processing follows n_tty:

- c_iflag: ISTRIP, IGNCR, ICRNL, INLCR, and IXON (VSTOP and VSTART hold
  and release output instead of being read).
- c_lflag ISIG: VINTR, VQUIT and VSUSP become SIGINT, SIGQUIT and SIGTSTP
  for the foreground process group (through the signal callback) and flush
  both queues unless NOFLSH.
- ICANON: input is read a line at a time, ended by newline, VEOL, VEOL2 or
  VEOF (a VEOF at the start of a line reads as end of file); VERASE, VKILL
  and, with IEXTEN, VWERASE, VREPRINT and VLNEXT edit the line. A line holds
  at most N_TTY_BUF_SIZE - 1 characters; more are dropped, as Linux does.
  Without ICANON, bytes are readable at once, as VMIN and VTIME say.
- ECHO, ECHOE, ECHOK, ECHOKE, ECHONL, ECHOCTL: echoes go to the output.

Output processing with OPOST: ONLCR, OCRNL, ONOCR, ONLRET and XTABS, with
the column tracked as n_tty does.

Input written to the master waits in a pending queue (the tty flip buffer,
at most 64 KiB; a writer blocks beyond) until the line discipline has room
(N_TTY_BUF_SIZE), so a raw-mode reader that falls behind loses nothing.
Output waits for the master in a queue of the same size.

The discipline knows nothing of files, process groups or sessions: devpts
wraps it in the master and replica files and provides the callback that
signals the foreground process group.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import ioctl as I
from pkg.abi.linux import signal as S
from pkg.abi.linux import termios as T
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.waiter import (
    EVENT_HUP,
    EVENT_IN,
    EVENT_OUT,
    EVENT_PRI,
    EVENT_RDNORM,
    EVENT_WRNORM,
    Entry,
    Queue,
)

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# Bytes written to the master that wait for room in the line discipline,
# and bytes of output that wait for the master (the flip buffers).
QUEUE_BYTES = 65536

_NL = 0x0A
_CR = 0x0D
_TAB = 0x09
_BS = 0x08
_DEL = 0x7F
_DISABLED = 0  # _POSIX_VDISABLE


def _xon_xoff(tio: T.Termios) -> bool:
    """Reports whether ^S and ^Q control the output (what a packet-mode
    master hears as TIOCPKT_DOSTOP)."""
    return bool(
        tio.iflag & T.IXON and tio.cc[T.VSTOP] == 0x13 and tio.cc[T.VSTART] == 0x11
    )


def _is_ctl(c: int) -> bool:
    return c < 0x20 or c == _DEL


class LineDiscipline:
    """LineDiscipline is the state of one pseudo-terminal's n_tty.

    Attributes:
        termios: the replica's attributes.
        winsize: the window size (TIOCGWINSZ).
        master_queue: notified when the master may read (output queued) or
            write (room for input).
        replica_queue: notified when the replica may read or write.
    """

    __slots__ = (
        "_column",
        "_edit",
        "_lines",
        "_lnext",
        "_master_gone",
        "_mu",
        "_out",
        "_pending",
        "_pktstatus",
        "_raw",
        "_replica_gone",
        "_signal",
        "_stopped",
        "master_queue",
        "packet",
        "replica_queue",
        "termios",
        "winsize",
    )

    def __init__(self, signal_fn: Callable[[int], None] | None = None) -> None:
        self._mu = threading.Lock()
        self.termios = T.replica_termios()
        self.winsize = T.Winsize()
        # Called without the lock with SIGINT, SIGQUIT, SIGTSTP or SIGWINCH
        # for the foreground process group.
        self._signal = signal_fn
        # Canonical mode: complete lines (an empty one is end of file) and
        # the line being edited. Non-canonical mode: readable bytes.
        self._lines: deque[bytes] = deque()
        self._edit = bytearray()
        self._raw = bytearray()
        # Input not yet taken by the line discipline.
        self._pending = bytearray()
        # Processed output for the master.
        self._out = bytearray()
        self._column = 0
        # Output held by VSTOP (IXON); the next character is literal
        # (VLNEXT).
        self._stopped = False
        self._lnext = False
        self.master_queue = Queue()
        self.replica_queue = Queue()
        # Hang-ups (TTY_OTHER_CLOSED): the master was closed, so replica
        # reads and writes fail with EIO; every replica was closed, so
        # master reads that would wait fail with EIO.
        self._master_gone = False
        self._replica_gone = False
        # Packet mode (TIOCPKT on the master): the master's reads start
        # with a status byte, and the events below are reported alone.
        self.packet = False
        self._pktstatus = 0

    def hang_up(self, master: bool, gone: bool = True) -> None:
        """Records that the master (master True) or every replica went
        (gone True) or that a replica is open again (gone False), and wakes
        the other side's waiters."""
        if master:
            self._master_gone = gone
        else:
            self._replica_gone = gone
        self._notify_all()

    @property
    def master_gone(self) -> bool:
        """Whether the master has been closed."""
        return self._master_gone

    @property
    def replica_gone(self) -> bool:
        """Whether every replica has been closed (after one was opened)."""
        return self._replica_gone

    # Packet mode.

    def set_packet(self, on: bool) -> None:
        """Turns the master's packet mode on or off (pty_set_pktmode);
        turning it on forgets earlier events."""
        with self._mu:
            if on and not self.packet:
                self._pktstatus = 0
            self.packet = on

    def _packet_event_locked(self, bits: int, clear: int = 0) -> None:
        """Records TIOCPKT_* events for a packet-mode master; the caller
        notifies the master's waiters."""
        if self.packet:
            self._pktstatus = (self._pktstatus & ~clear) | bits

    def _set_stopped_locked(self, stopped: bool) -> None:
        """Stops or restarts output (IXON's VSTOP and VSTART), telling a
        packet-mode master (pty_stop, pty_start)."""
        if stopped != self._stopped:
            if stopped:
                self._packet_event_locked(I.TIOCPKT_STOP, I.TIOCPKT_START)
            else:
                self._packet_event_locked(I.TIOCPKT_START, I.TIOCPKT_STOP)
        self._stopped = stopped

    # Attributes.

    def get_termios(self) -> T.Termios:
        """Returns a copy of the replica's attributes (TCGETS)."""
        with self._mu:
            return self.termios.copy()

    def set_termios(self, new: T.Termios, flush_input: bool = False) -> None:
        """Changes the attributes (TCSETS; TCSETSF flushes input first).

        Switching canonical mode off makes the line being edited readable;
        switching it on makes what is readable one line (n_tty_set_termios).
        """
        with self._mu:
            if flush_input:
                self._flush_input_locked()
                self._packet_event_locked(I.TIOCPKT_FLUSHREAD)
            old = self.termios
            if _xon_xoff(old) != _xon_xoff(new):
                # Whether ^S/^Q flow control is on (pty_set_termios).
                flow = I.TIOCPKT_DOSTOP if _xon_xoff(new) else I.TIOCPKT_NOSTOP
                self._packet_event_locked(flow, I.TIOCPKT_DOSTOP | I.TIOCPKT_NOSTOP)
            self.termios = new.copy()
            if (old.lflag ^ new.lflag) & T.ICANON:
                if new.lflag & T.ICANON:
                    if self._raw:
                        self._lines.append(bytes(self._raw))
                        self._raw.clear()
                else:
                    self._raw += b"".join(self._lines) + self._edit
                    self._lines.clear()
                    self._edit.clear()
                self._lnext = False
            if not new.iflag & T.IXON:
                self._set_stopped_locked(False)
            self._process_pending_locked()
        self._notify_all()

    def set_winsize(self, ws: T.Winsize) -> None:
        """Sets the window size (TIOCSWINSZ); a change signals SIGWINCH."""
        with self._mu:
            changed = ws != self.winsize
            self.winsize = ws
        if changed and self._signal is not None:
            self._signal(S.SIGWINCH)

    # Input: the master writes, the replica reads.

    def master_write(self, t: Task, data: bytes, nonblocking: bool) -> int:
        """Queues terminal input and processes what fits.

        Returns:
            The bytes taken, at least one unless data is empty.

        Raises:
            SyscallError: EAGAIN when nothing fits and nonblocking,
                ERESTARTSYS when interrupted while waiting for room.
        """
        if not data:
            return 0
        while True:
            signals: list[int] = []
            with self._mu:
                room = QUEUE_BYTES - len(self._pending)
                if room > 0:
                    n = min(room, len(data))
                    self._pending += data[:n]
                    signals = self._process_pending_locked()
                    break
            if nonblocking:
                raise SyscallError(errno.EAGAIN)
            self._wait(t, self.master_queue, EVENT_OUT, self._master_writable)
        self._deliver(signals)
        self._notify_all()
        return n

    def simulate_input(self, c: int) -> None:
        """Processes one character as if typed at the terminal (TIOCSTI on
        the replica); like n_tty's receive_buf it does not wait for room."""
        with self._mu:
            self._pending.append(c)
            signals = self._process_pending_locked()
        self._deliver(signals)
        self._notify_all()

    def simulate_output(self, c: int) -> None:
        """Queues one character for the master to read, unprocessed
        (TIOCSTI on the master, whose own line discipline is raw)."""
        with self._mu:
            self._out.append(c)
        self._notify_all()

    def replica_read(self, t: Task, length: int, nonblocking: bool) -> bytes:
        """Reads input: at most one line in canonical mode, as VMIN and
        VTIME say otherwise.

        Raises:
            SyscallError: EAGAIN when nothing is readable and nonblocking,
                ERESTARTSYS when interrupted.
        """
        if length <= 0:
            return b""
        with self._mu:
            canonical = bool(self.termios.lflag & T.ICANON)
            vmin = self.termios.cc[T.VMIN]
            vtime = self.termios.cc[T.VTIME]
        if canonical:
            data = self._take(length, canonical=True)
            while data is None:
                if nonblocking:
                    raise SyscallError(errno.EAGAIN)
                self._wait(t, self.replica_queue, EVENT_IN, self._replica_readable)
                data = self._take(length, canonical=True)
            return data
        return self._read_raw(t, length, nonblocking, vmin, vtime)

    def _read_raw(
        self, t: Task, length: int, nonblocking: bool, vmin: int, vtime: int
    ) -> bytes:
        """Non-canonical read: VMIN bytes are awaited (at most length);
        VTIME, in tenths of a second, bounds the wait for the first byte
        when VMIN is 0 and between bytes otherwise (n_tty_read)."""
        if nonblocking or (vmin == 0 and vtime == 0):
            data = self._take(length, canonical=False)
            if data is None:
                if nonblocking:
                    raise SyscallError(errno.EAGAIN)
                return b""
            return data
        timeout = vtime / 10 if vtime else None
        if vmin == 0:
            self._wait_raw(t, 1, time.monotonic() + (timeout or 0))
        else:
            want = min(vmin, length)
            self._wait_raw(t, 1 if timeout is not None else want, None)
            while timeout is not None:
                with self._mu:
                    have = len(self._raw)
                if have >= want:
                    break
                if not self._wait_raw(t, have + 1, time.monotonic() + timeout):
                    break
        data = self._take(length, canonical=False)
        return data if data is not None else b""

    def _wait_raw(self, t: Task, count: int, deadline: float | None) -> bool:
        """Waits until count bytes are readable; returns False at the
        deadline instead.

        Raises:
            SyscallError: ERESTARTSYS when interrupted.
        """
        try:
            self._wait(
                t,
                self.replica_queue,
                EVENT_IN,
                lambda: len(self._raw) >= count,
                deadline,
            )
        except SyscallError as e:
            if e.errno != errno.ETIMEDOUT:
                raise
            return False
        return True

    def _take(self, length: int, canonical: bool) -> bytes | None:
        """Removes up to length readable bytes; None if there are none."""
        with self._mu:
            if canonical:
                if not self._lines:
                    return None
                line = self._lines[0]
                if len(line) <= length:
                    self._lines.popleft()
                    data = line
                else:
                    data = line[:length]
                    self._lines[0] = line[length:]
            else:
                if not self._raw:
                    return None
                data = bytes(self._raw[:length])
                del self._raw[:length]
            signals = self._process_pending_locked()
        self._deliver(signals)
        self._notify_all()
        return data

    def input_readable_bytes(self) -> int:
        """Bytes the replica can read (FIONREAD on the replica, inq_canon in
        canonical mode)."""
        with self._mu:
            if self.termios.lflag & T.ICANON:
                return sum(len(line) for line in self._lines)
            return len(self._raw)

    # Output: the replica writes, the master reads.

    def replica_write(self, t: Task, data: bytes, nonblocking: bool) -> int:
        """Processes output for the master, waiting for room unless
        nonblocking (n_tty_write).

        Returns:
            The bytes of data taken (before processing); fewer than all if
            a wait was interrupted or nonblocking output ran out of room.

        Raises:
            SyscallError: EAGAIN when nothing fits and nonblocking,
                ERESTARTSYS when interrupted before anything was written.
        """
        done = 0
        while done < len(data):
            with self._mu:
                room = QUEUE_BYTES - len(self._out)
                if room > 0:
                    # Processing may expand a byte to a few (CR LF, a tab to
                    # spaces): take what surely fits.
                    n = min(len(data) - done, max(1, room // 8))
                    self._output_locked(data[done : done + n])
                    done += n
                    continue
            self.master_queue.notify(EVENT_IN)
            if nonblocking:
                if done:
                    break
                raise SyscallError(errno.EAGAIN)
            try:
                self._wait(t, self.replica_queue, EVENT_OUT, self._replica_writable)
            except SyscallError:
                if done:
                    break
                raise
        self.master_queue.notify(EVENT_IN)
        return done

    def master_read(self, t: Task, length: int, nonblocking: bool) -> bytes:
        """Reads processed output.

        Raises:
            SyscallError: EAGAIN when none is queued and nonblocking,
                ERESTARTSYS when interrupted.
        """
        if length <= 0:
            return b""
        while True:
            with self._mu:
                if self.packet and self._pktstatus:
                    # An event is read alone (n_tty_read).
                    data = bytes([self._pktstatus])
                    self._pktstatus = 0
                    return data
                if self._out and not self._stopped:
                    if self.packet:
                        n = length - 1
                        data = bytes([I.TIOCPKT_DATA]) + bytes(self._out[:n])
                    else:
                        n = length
                        data = bytes(self._out[:n])
                    del self._out[:n]
                    break
            if nonblocking:
                raise SyscallError(errno.EAGAIN)
            self._wait(t, self.master_queue, EVENT_IN, self._master_readable)
        self.replica_queue.notify(EVENT_OUT)
        return data

    def output_queued_bytes(self) -> int:
        """Bytes of output the master has not read (TIOCOUTQ on the replica,
        FIONREAD on the master)."""
        with self._mu:
            return len(self._out)

    # Flushing and readiness.

    def flush(self, selector: int, replica: bool = True) -> None:
        """Discards queued input, output or both (TCFLSH); through the
        replica, a packet-mode master hears of it.

        Raises:
            SyscallError: EINVAL for an unknown selector.
        """
        if selector not in (T.TCIFLUSH, T.TCOFLUSH, T.TCIOFLUSH):
            raise SyscallError(errno.EINVAL)
        with self._mu:
            if selector in (T.TCIFLUSH, T.TCIOFLUSH):
                self._flush_input_locked()
                if replica:
                    self._packet_event_locked(I.TIOCPKT_FLUSHREAD)
            if selector in (T.TCOFLUSH, T.TCIOFLUSH):
                self._out.clear()
                if replica:
                    self._packet_event_locked(I.TIOCPKT_FLUSHWRITE)
        self._notify_all()

    def replica_readiness(self, mask: int) -> int:
        """poll(2) readiness of the replica end (EVENT_HUP, always
        reported, once the master is gone)."""
        ready = 0
        if self._replica_readable() or self._master_gone:
            ready |= EVENT_IN | EVENT_RDNORM
        if self._replica_writable():
            ready |= EVENT_OUT | EVENT_WRNORM
        if self._master_gone:
            return ready & mask | EVENT_HUP
        return ready & mask

    def master_readiness(self, mask: int) -> int:
        """poll(2) readiness of the master end (EVENT_HUP once every
        replica is gone)."""
        ready = 0
        if self._master_readable():
            ready |= EVENT_IN | EVENT_RDNORM
        if self.packet and self._pktstatus:
            ready |= EVENT_PRI
        if self._master_writable():
            ready |= EVENT_OUT | EVENT_WRNORM
        if self._replica_gone:
            return ready & mask | EVENT_HUP
        return ready & mask

    def _replica_readable(self) -> bool:
        if self.termios.lflag & T.ICANON:
            return bool(self._lines)
        return bool(self._raw)

    def _replica_writable(self) -> bool:
        return len(self._out) < QUEUE_BYTES

    def _master_readable(self) -> bool:
        if self.packet and self._pktstatus:
            return True
        return bool(self._out) and not self._stopped

    def _master_writable(self) -> bool:
        return len(self._pending) < QUEUE_BYTES

    # Internals.

    def _wait(
        self,
        t: Task,
        queue: Queue,
        event: int,
        ready: Callable[[], bool],
        deadline: float | None = None,
    ) -> None:
        """Blocks until ready() holds (checked after registering).

        Raises:
            SyscallError: ERESTARTSYS when interrupted, ETIMEDOUT at the
                deadline.
        """
        entry = Entry(lambda _mask: t.wake(), event)
        queue.register(entry)
        try:
            while not ready():
                # The other side hung up: nothing will come (n_tty_read's
                # TTY_OTHER_CLOSED).
                if (
                    self._master_gone
                    if queue is self.replica_queue
                    else (self._replica_gone)
                ):
                    raise SyscallError(errno.EIO)
                t.block(deadline)
        finally:
            queue.unregister(entry)

    def _notify_all(self) -> None:
        self.replica_queue.notify(EVENT_IN | EVENT_OUT)
        self.master_queue.notify(EVENT_IN | EVENT_OUT | EVENT_PRI)

    def _deliver(self, signals: list[int]) -> None:
        if self._signal is not None:
            for signo in signals:
                self._signal(signo)

    def _flush_input_locked(self, pending: bool = True) -> None:
        self._lines.clear()
        self._edit.clear()
        self._raw.clear()
        if pending:
            self._pending.clear()
        self._lnext = False

    def _buffered_locked(self) -> int:
        return sum(len(line) for line in self._lines) + len(self._edit) + len(self._raw)

    def _process_pending_locked(self) -> list[int]:
        """Moves pending input into the line discipline while it has room
        (n_tty_receive_buf); returns the signals to send."""
        signals: list[int] = []
        pending = self._pending
        i = 0
        canonical = bool(self.termios.lflag & T.ICANON)
        while i < len(pending):
            if not canonical and self._buffered_locked() >= T.N_TTY_BUF_SIZE:
                break
            self._receive_locked(pending[i], signals)
            i += 1
        del pending[:i]
        return signals

    def _receive_locked(self, c: int, signals: list[int]) -> None:
        """Processes one input character (n_tty_receive_char)."""
        tio = self.termios
        iflag, lflag, cc = tio.iflag, tio.lflag, tio.cc
        if iflag & T.ISTRIP:
            c &= 0x7F
        if self._lnext:
            self._lnext = False
            self._store_locked(c)
            return
        if c == _CR:
            if iflag & T.IGNCR:
                return
            if iflag & T.ICRNL:
                c = _NL
        elif c == _NL and iflag & T.INLCR:
            c = _CR

        def is_char(index: int) -> bool:
            v = cc[index]
            return v != _DISABLED and c == v

        if iflag & T.IXON:
            if is_char(T.VSTOP):
                self._set_stopped_locked(True)
                return
            if is_char(T.VSTART):
                self._set_stopped_locked(False)
                return
            if iflag & T.IXANY:
                self._set_stopped_locked(False)
        if lflag & T.ISIG:
            for index, signo in (
                (T.VINTR, S.SIGINT),
                (T.VQUIT, S.SIGQUIT),
                (T.VSUSP, S.SIGTSTP),
            ):
                if is_char(index):
                    if not lflag & T.NOFLSH:
                        # The read buffer and the output, not the input
                        # still to be processed (isig).
                        self._flush_input_locked(pending=False)
                        self._out.clear()
                    self._set_stopped_locked(False)
                    if lflag & T.ECHO:
                        self._echo_locked(c)
                    signals.append(signo)
                    return
        if lflag & T.ICANON:
            if is_char(T.VERASE):
                self._erase_locked(1)
                return
            if is_char(T.VKILL):
                self._kill_line_locked(c)
                return
            if lflag & T.IEXTEN:
                if is_char(T.VWERASE):
                    self._erase_locked(2)
                    return
                if is_char(T.VLNEXT):
                    self._lnext = True
                    if lflag & T.ECHO and lflag & T.ECHOCTL:
                        self._output_locked(b"^\b")
                    return
                if is_char(T.VREPRINT):
                    if lflag & T.ECHO:
                        self._echo_locked(c)
                        self._output_locked(b"\n" + bytes(self._edit))
                    return
            if is_char(T.VEOF):
                # The line ends without the character; at the start of a
                # line it reads as end of file.
                self._lines.append(bytes(self._edit))
                self._edit.clear()
                return
            if c == _NL or is_char(T.VEOL) or is_char(T.VEOL2):
                self._edit.append(c)
                if lflag & T.ECHO or (c == _NL and lflag & T.ECHONL):
                    self._echo_locked(c)
                self._lines.append(bytes(self._edit))
                self._edit.clear()
                return
        self._store_locked(c)

    def _store_locked(self, c: int) -> None:
        lflag = self.termios.lflag
        if lflag & T.ICANON:
            if self._buffered_locked() >= T.N_TTY_BUF_SIZE - 1:
                # The line is full: the character is dropped.
                return
            self._edit.append(c)
        else:
            self._raw.append(c)
        if lflag & T.ECHO:
            self._echo_locked(c)

    def _echo_locked(self, c: int) -> None:
        lflag = self.termios.lflag
        if lflag & T.ECHOCTL and _is_ctl(c) and c not in (_NL, _TAB):
            self._output_locked(bytes([ord("^"), c ^ 0x40]))
        else:
            self._output_locked(bytes([c]))

    def _erase_locked(self, kind: int) -> None:
        """Erases a character (kind 1, VERASE) or a word (2, VWERASE) of the
        line being edited (eraser)."""
        edit = self._edit
        lflag = self.termios.lflag
        if not edit:
            return
        if lflag & T.ECHO and not lflag & T.ECHOE:
            # Without visual erase, the erase character itself is echoed.
            self._echo_locked(self.termios.cc[T.VERASE if kind == 1 else T.VWERASE])
        seen_word = False
        while edit:
            c = edit[-1]
            if kind == 2:
                if chr(c).isalnum() or c == ord("_"):
                    seen_word = True
                elif seen_word:
                    break
            edit.pop()
            if lflag & T.ECHO and lflag & T.ECHOE:
                self._rub_out_locked(c)
            if kind == 1:
                break

    def _rub_out_locked(self, c: int) -> None:
        lflag = self.termios.lflag
        width = 2 if lflag & T.ECHOCTL and _is_ctl(c) and c != _TAB else 1
        self._output_locked(b"\b \b" * width)

    def _kill_line_locked(self, c: int) -> None:
        """Erases the whole line being edited (VKILL)."""
        lflag = self.termios.lflag
        if not lflag & T.ECHO:
            self._edit.clear()
            return
        if not (lflag & T.ECHOK and lflag & T.ECHOKE and lflag & T.ECHOE):
            self._edit.clear()
            self._echo_locked(c)
            if lflag & T.ECHOK:
                self._output_locked(b"\n")
            return
        while self._edit:
            self._rub_out_locked(self._edit.pop())

    def _output_locked(self, data: bytes) -> None:
        """Appends output, processed by c_oflag (n_tty's do_output_char)."""
        oflag = self.termios.oflag
        out = self._out
        if not oflag & T.OPOST:
            out += data
            return
        for c in data:
            if c == _NL:
                if oflag & T.ONLRET:
                    self._column = 0
                if oflag & T.ONLCR:
                    self._column = 0
                    out += b"\r\n"
                    continue
                out.append(c)
            elif c == _CR:
                if oflag & T.ONOCR and self._column == 0:
                    continue
                if oflag & T.OCRNL:
                    if oflag & T.ONLRET:
                        self._column = 0
                    out.append(_NL)
                    continue
                self._column = 0
                out.append(c)
            elif c == _TAB:
                spaces = 8 - (self._column & 7)
                if oflag & T.TABDLY == T.XTABS:
                    self._column += spaces
                    out += b" " * spaces
                    continue
                self._column += spaces
                out.append(c)
            elif c == _BS:
                if self._column > 0:
                    self._column -= 1
                out.append(c)
            else:
                if not _is_ctl(c):
                    self._column += 1
                out.append(c)
