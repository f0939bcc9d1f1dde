"""HostRelay: a devpts terminal of the sandbox relayed to a host terminal.

A container whose OCI process asks for a terminal gets, as under runc, a
pseudo-terminal of its own devpts (/dev/pts/N) as its controlling terminal.
The host terminal the container client holds (the pty runsc sends to the
console socket, or the terminal runsc itself runs on) is only a byte pipe
to it: a HostRelay copies what the host side types to the sentry terminal's
master, and what the container writes from that master to the host side.

The host terminal is put in raw mode so that the line discipline runs once,
in the sentry: echo, line editing, ^C/^Z/^\\ as signals of the sandbox's
foreground process group, and output processing (ONLCR) happen in devpts.
Its original attributes are put back when the relay ends.

Window size: the sentry terminal starts with the host terminal's size and
follows it. A host pty tells a size change only by SIGWINCH to the
foreground group of the session it controls, and only one host terminal can
be the sandbox process's controlling terminal, while every `exec -t` brings
its own. So the relay looks at the host size (one TIOCGWINSZ) every
WINSIZE_POLL_SECONDS, and at once when sync_winsize() is called (the sandbox
calls it on a SIGWINCH it gets from the host); a change is set on the sentry
terminal, whose line discipline sends SIGWINCH to its foreground group.

Ends: when every replica of the sentry terminal is closed (the container's
process exited), the relay copies what output is left, closes the master
(the terminal goes, as its pty goes under runc once the client closes the
master) and closes its host descriptors, which is how the client learns that
the process is done. When the host side hangs up (the client closed its
master, the user's terminal went), the relay closes the sentry terminal's
master: the replica is hung up and its session's leader gets SIGHUP, as
Linux does when a pty master is closed. End of file on a host input that is
not a terminal only ends the input.

TODO(#7): attributes a client sets on its master (TCSETS on a pty master
applies to the replica, which under runc is the container's terminal) change
the host pty only, undoing its raw mode; they do not reach the sentry
terminal (the podman, ctr and docker tests pass, so theirs set none that
matters). A size change of an exec'd process's terminal is seen up to
WINSIZE_POLL_SECONDS late.

Two host threads per relay: one for input (and the size), one for output,
so that a client that stops reading output does not stop ^C from reaching
the container.
"""

from __future__ import annotations

import contextlib
import errno as host_errno
import fcntl
import logging
import os
import select
import termios
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import termios as T
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.waiter import EVENT_IN, EVENT_OUT, Entry

if TYPE_CHECKING:
    from pkg.sentry.fsimpl.devpts.devpts import MasterFD

log = logging.getLogger(__name__)

# How often the host terminal's size is looked at.
WINSIZE_POLL_SECONDS = 0.2
# How much is read from either side at once.
_CHUNK = 16384


def make_raw(fd: int, keep_opost: bool = False) -> list | None:
    """Puts the terminal fd in raw mode (cfmakeraw(3)), output processing
    left on if keep_opost; returns its previous attributes, or None if fd is
    not a terminal."""
    try:
        old = termios.tcgetattr(fd)
    except termios.error:
        return None
    new = [list(x) if isinstance(x, list) else x for x in old]
    new[0] &= ~(
        termios.IGNBRK
        | termios.BRKINT
        | termios.PARMRK
        | termios.ISTRIP
        | termios.INLCR
        | termios.IGNCR
        | termios.ICRNL
        | termios.IXON
    )
    if not keep_opost:
        new[1] &= ~termios.OPOST
    new[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG)
    new[3] &= ~termios.IEXTEN
    new[2] &= ~(termios.CSIZE | termios.PARENB)
    new[2] |= termios.CS8
    new[6][termios.VMIN] = 1
    new[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, new)
    return old


def host_winsize(fd: int) -> T.Winsize | None:
    """Returns the window size of the host terminal fd, None if it has
    none."""
    try:
        raw = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None
    return T.Winsize.unpack(raw)


class HostRelay:
    """HostRelay copies between a sentry terminal's master and a host
    terminal (or any host descriptors for input and output).

    Args:
        master: the sentry terminal's master; the relay takes over this
            reference.
        in_fd: the host descriptor input comes from; the relay takes it
            over.
        out_fd: the host descriptor output goes to (may be in_fd); the relay
            takes it over.
        name: for log messages.
        foreground: the host descriptors are the terminal (or files) runsc
            runs on, not a pty made for the container: as runc does then,
            the host terminal keeps its output processing and the sentry
            terminal does not turn NL into CR NL (ONLCR), so that output
            redirected to a file has plain newlines.

    Attributes:
        done: set once the relay has ended and closed everything.
    """

    def __init__(
        self,
        master: MasterFD,
        in_fd: int,
        out_fd: int,
        name: str,
        foreground: bool = False,
    ) -> None:
        self.term = master.term
        self.name = name
        self.done = threading.Event()
        self._master: MasterFD | None = master
        self._in_fd = in_fd
        self._out_fd = out_fd
        self._mu = threading.Lock()
        self._host_gone = False
        # The descriptor whose size the sentry terminal follows.
        self._size_fd = next((fd for fd in (in_fd, out_fd) if os.isatty(fd)), -1)
        self._saved: list[tuple[int, list]] = []
        for fd in dict.fromkeys((in_fd, out_fd)):
            old = make_raw(fd, keep_opost=foreground)
            if old is not None:
                self._saved.append((fd, old))
        if foreground:
            tio = self.term.ld.get_termios()
            tio.oflag &= ~T.ONLCR
            self.term.ld.set_termios(tio)
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._out_ready = threading.Event()
        self._in_room = threading.Event()
        ld = self.term.ld
        self._entry = Entry(self._on_master_event, EVENT_IN | EVENT_OUT)
        ld.master_queue.register(self._entry)
        self.sync_winsize()
        self._in_thread: threading.Thread | None = None
        self._on_done: list[Callable[[], None]] = []

    def start(self) -> None:
        """Starts copying."""
        self._in_thread = threading.Thread(
            target=self._input_loop, name=f"tty-in-{self.name}", daemon=True
        )
        self._in_thread.start()
        threading.Thread(
            target=self._output_loop, name=f"tty-out-{self.name}", daemon=True
        ).start()

    def on_done(self, fn: Callable[[], None]) -> None:
        """Calls fn once the relay has ended (at once if it has)."""
        with self._mu:
            if not self.done.is_set():
                self._on_done.append(fn)
                return
        fn()

    def sync_winsize(self) -> None:
        """Gives the sentry terminal the host terminal's size, if it
        changed (its foreground group then gets SIGWINCH)."""
        if self._size_fd < 0:
            return
        with self._mu:
            if self.done.is_set():
                return
            ws = host_winsize(self._size_fd)
        if ws is not None:
            self.term.ld.set_winsize(ws)

    # Input: host to master.

    def _input_loop(self) -> None:
        try:
            self._copy_input()
        except Exception:
            log.exception("tty: relay %s: input", self.name)
            self._hang_up()

    def _copy_input(self) -> None:
        reading = True
        poller = select.poll()
        poller.register(self._stop_r, select.POLLIN)
        poller.register(self._in_fd, select.POLLIN)
        is_tty = os.isatty(self._in_fd)
        timeout_ms = int(WINSIZE_POLL_SECONDS * 1000) if self._size_fd >= 0 else -1
        while True:
            events = dict(poller.poll(timeout_ms))
            if events.get(self._stop_r):
                return
            self.sync_winsize()
            ev = events.get(self._in_fd, 0) if reading else 0
            if not ev:
                continue
            try:
                data = os.read(self._in_fd, _CHUNK)
            except BlockingIOError:
                continue
            except OSError as e:
                if is_tty or e.errno != host_errno.EINTR:
                    log.debug("tty: relay %s: host input: %s", self.name, e)
                    self._hang_up()
                    return
                continue
            if not data:
                if is_tty and not ev & select.POLLHUP:
                    continue
                if is_tty:
                    self._hang_up()
                    return
                # A pipe or file ended: no more input, the output goes on.
                reading = False
                poller.unregister(self._in_fd)
                if timeout_ms < 0:
                    return
                continue
            if not self._write_master(data):
                return

    def _write_master(self, data: bytes) -> bool:
        """Feeds data to the line discipline, waiting for room; returns
        False if the relay is ending."""
        ld = self.term.ld
        while data:
            with self._mu:
                if self._master is None:
                    return False
                self._in_room.clear()
            try:
                n = ld.master_write(None, data, True)  # type: ignore[arg-type]
            except SyscallError as e:
                if e.errno != errno.EAGAIN:
                    raise
                while not self._in_room.wait(WINSIZE_POLL_SECONDS):
                    if self._stopping():
                        return False
                continue
            data = data[n:]
        return True

    def _stopping(self) -> bool:
        r, _, _ = select.select([self._stop_r], [], [], 0)
        return bool(r)

    # Output: master to host.

    def _output_loop(self) -> None:
        try:
            self._copy_output()
        except Exception:
            log.exception("tty: relay %s: output", self.name)
        finally:
            self._finish()

    def _copy_output(self) -> None:
        ld = self.term.ld
        discard = False
        while True:
            with self._mu:
                if self._host_gone or self._master is None:
                    return
                self._out_ready.clear()
            # Seen before the read: output written before the last replica
            # closed is then surely queued.
            gone = ld.replica_gone
            try:
                data = ld.master_read(None, _CHUNK, True)  # type: ignore[arg-type]
            except SyscallError as e:
                if e.errno != errno.EAGAIN:
                    raise
                if gone:
                    return
                self._out_ready.wait()
                continue
            if discard:
                continue
            err = self._write_host(data)
            if err is None:
                continue
            if err == host_errno.EIO:
                self._hang_up()
                return
            # The output's reader went (a pipe closed): the container's
            # output is dropped from now on, so that it never blocks.
            log.debug("tty: relay %s: host output: %s", self.name, os.strerror(err))
            discard = True

    def _write_host(self, data: bytes) -> int | None:
        """Writes all of data to the host; returns an errno on failure."""
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._out_fd, view)
            except BlockingIOError:
                select.select([self._stop_r], [self._out_fd], [])
                if self._stopping():
                    return host_errno.EPIPE
                continue
            except InterruptedError:
                continue
            except OSError as e:
                return e.errno
            view = view[n:]
        return None

    # Ending.

    def _on_master_event(self, mask: int) -> None:
        if mask & EVENT_IN:
            self._out_ready.set()
        if mask & EVENT_OUT:
            self._in_room.set()

    def _hang_up(self) -> None:
        """The host side went: the sentry terminal's master closes, which
        hangs its replica up and signals its session."""
        with self._mu:
            self._host_gone = True
        self._release_master()
        self._out_ready.set()

    def _release_master(self) -> None:
        with self._mu:
            master, self._master = self._master, None
        if master is not None:
            self.term.ld.master_queue.unregister(self._entry)
            master.dec_ref()

    def _finish(self) -> None:
        """Ends the relay (on the output thread): stops the input thread,
        closes the master and the host descriptors."""
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")
        self._in_room.set()
        if self._in_thread is not None and self._in_thread is not (
            threading.current_thread()
        ):
            self._in_thread.join(5.0)
        self._release_master()
        # Last saved first: two descriptors of one terminal saved raw
        # attributes second.
        for fd, old in reversed(self._saved):
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(fd, termios.TCSANOW, old)
        with self._mu:
            self.done.set()
            callbacks, self._on_done = self._on_done, []
            for fd in dict.fromkeys((self._in_fd, self._out_fd)):
                with contextlib.suppress(OSError):
                    os.close(fd)
        for fd in (self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        log.debug("tty: relay %s ended", self.name)
        for fn in callbacks:
            fn()
