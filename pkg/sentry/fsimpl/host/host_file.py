"""Host files: descriptors the sandbox received from its creator.

The container's stdio are host descriptors that runsc hands to the sentry.
Reads and writes go straight to them, sharing the file offset and status
flags with whoever else holds the same open file, as Linux would for an
inherited descriptor. The sentry never changes the host descriptor's flags:
a shared terminal left non-blocking would break the shell that started us.
Blocking is done by polling the host descriptor together with the task's
wake descriptor, so a read from a quiet terminal stays interruptible.

Readiness is the host's: poll(2) and epoll in the sandbox wait on the host
descriptor itself (host_poll_fd), so a task waiting on standard input and an
eventfd wakes for either without spinning.
"""

from __future__ import annotations

import fcntl as host_fcntl
import os
import select
import stat as host_stat
import termios
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import ioctl as I
from pkg.abi.linux import signal as S
from pkg.abi.linux.stat import Statx, statx_from_host
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.host.tty import HostTTY, host_tty
from pkg.sentry.kernel.signals import SignalInfo
from pkg.sentry.kernel.task_signals import send_to_task
from pkg.sentry.kernel.waiter import EVENT_ERR, EVENT_HUP
from pkg.sentry.vfs.file_description import FILE_STATUS_FLAGS, FileDescription

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# Largest single host read: bounded so that a huge read(2) does not make the
# sentry allocate the whole request up front.
_MAX_READ = 1 << 20
# Terminal requests refused to background processes (tty_check_change).
_TTY_CHANGES = frozenset(
    (I.TCSETS, I.TCSETSW, I.TCSETSF, I.TIOCSPGRP, I.TCFLSH, I.TCXONC)
)


# Events a host poll is asked about: poll(2)'s events are 16 bits.
_HOST_POLL_EVENTS = 0xFFFF


def _host_can_poll(host_fd: int) -> bool:
    """Reports whether the host can epoll host_fd (file_can_poll there):
    regular files, directories and devices without a poll operation such
    as /dev/null cannot."""
    ep = select.epoll()
    try:
        ep.register(host_fd, select.EPOLLIN)
    except OSError:
        return False
    finally:
        ep.close()
    return True


class HostFile(FileDescription):
    """HostFile wraps one host descriptor owned by the sentry."""

    __slots__ = ("_can_poll", "host_fd", "is_tty", "mode", "seekable")

    def __init__(self, host_fd: int, flags: int | None = None) -> None:
        if flags is None:
            flags = host_fcntl.fcntl(host_fd, host_fcntl.F_GETFL)
        super().__init__(flags & ~F.O_CLOEXEC)
        self.host_fd = host_fd
        st = os.fstat(host_fd)
        self.mode = st.st_mode
        self.is_tty = os.isatty(host_fd)
        self.seekable = host_stat.S_ISREG(st.st_mode) or host_stat.S_ISBLK(st.st_mode)
        self._can_poll: bool | None = None

    def release(self) -> None:
        os.close(self.host_fd)

    def reopen(self, t: Task | None, flags: int) -> FileDescription:
        """Opens the host file anew (/dev/stdout, /proc/self/fd/N).

        Unlike Linux, the new file shares the host's open file (its offset
        and status flags), being a dup of the same host descriptor: the
        sentry opens no host path. Its access mode is the one asked for;
        an access the host descriptor lacks fails at read or write (EBADF).
        """
        return HostFile(os.dup(self.host_fd), flags & FILE_STATUS_FLAGS)

    def terminal(self, t: Task) -> HostTTY:
        """Returns the job-control state of this host terminal."""
        return host_tty(t.kernel, self.host_fd, HostFile)

    def display_name(self) -> str:
        if self.is_tty:
            return "host:[tty]"
        if host_stat.S_ISFIFO(self.mode):
            return "host:[pipe]"
        if host_stat.S_ISSOCK(self.mode):
            return "host:[socket]"
        return "host:[file]"

    def _wait(self, t: Task, events: int) -> None:
        while True:
            ready = t.block(host_fds=((self.host_fd, events),))
            if ready:
                return

    def read(self, t: Task, length: int) -> bytes:
        if not self.readable:
            raise SyscallError(errno.EBADF)
        if self.is_tty:
            self.terminal(t).check_background(t, S.SIGTTIN)
        length = min(length, _MAX_READ)
        while True:
            if not self.seekable and not self.nonblocking:
                # Wait first: a plain read on a quiet pipe or terminal would
                # block this thread where no signal could reach it.
                self._wait(t, select.POLLIN)
            try:
                return os.read(self.host_fd, length)
            except BlockingIOError:
                if self.nonblocking:
                    raise SyscallError(errno.EAGAIN) from None
            except OSError as e:
                raise SyscallError(e.errno or errno.EIO) from None

    def write(self, t: Task, data: bytes) -> int:
        if not self.writable:
            raise SyscallError(errno.EBADF)
        total = 0
        view = memoryview(data)
        while True:
            try:
                n = os.write(self.host_fd, view[total:])
            except BlockingIOError:
                n = 0
            except BrokenPipeError:
                if total:
                    return total
                send_to_task(t, SignalInfo(signo=S.SIGPIPE, code=S.SI_USER, pid=t.pid))
                raise SyscallError(errno.EPIPE) from None
            except OSError as e:
                if total:
                    return total
                raise SyscallError(e.errno or errno.EIO) from None
            total += n
            if total == len(data) or self.seekable:
                return total
            if self.nonblocking:
                if total:
                    return total
                raise SyscallError(errno.EAGAIN)
            try:
                self._wait(t, select.POLLOUT)
            except SyscallError:
                if total:
                    return total
                raise

    def pread(self, t: Task, length: int, offset: int) -> bytes:
        if not self.seekable:
            raise SyscallError(errno.ESPIPE)
        if not self.readable:
            raise SyscallError(errno.EBADF)
        try:
            return os.pread(self.host_fd, min(length, _MAX_READ), offset)
        except OSError as e:
            raise SyscallError(e.errno or errno.EIO) from None

    def pwrite(self, t: Task, data: bytes, offset: int) -> int:
        if not self.seekable:
            raise SyscallError(errno.ESPIPE)
        if not self.writable:
            raise SyscallError(errno.EBADF)
        try:
            return os.pwrite(self.host_fd, data, offset)
        except OSError as e:
            raise SyscallError(e.errno or errno.EIO) from None

    def seek(self, t: Task, offset: int, whence: int) -> int:
        try:
            return os.lseek(self.host_fd, offset, whence)
        except OSError as e:
            raise SyscallError(e.errno or errno.EINVAL) from None

    def tell(self, t: Task) -> int:
        # The offset belongs to the host's open file, shared with whoever
        # else holds it (the shell that redirected our stdout, say).
        if not self.seekable:
            return 0
        return self.seek(t, 0, F.SEEK_CUR)

    def stat(self, t: Task, mask: int) -> Statx:
        try:
            st = os.fstat(self.host_fd)
        except OSError as e:
            raise SyscallError(e.errno or errno.EIO) from None
        return statx_from_host(st, os.major(st.st_dev), os.minor(st.st_dev))

    def readiness(self, mask: int) -> int:
        p = select.poll()
        p.register(self.host_fd, mask & _HOST_POLL_EVENTS)
        ready = 0
        for _fd, revents in p.poll(0):
            ready |= revents
        return ready & (mask | EVENT_ERR | EVENT_HUP)

    def epollable(self) -> bool:
        if self._can_poll is None:
            self._can_poll = _host_can_poll(self.host_fd)
        return self._can_poll

    def host_poll_fd(self) -> int:
        return self.host_fd

    def ioctl(self, t: Task, cmd: int, arg: int) -> int:
        if cmd == I.FIONREAD and not self.is_tty:
            buf = host_fcntl.ioctl(self.host_fd, termios.FIONREAD, b"\0" * 4)
            t.copy_out(arg, buf)
            return 0
        if not self.is_tty:
            raise SyscallError(errno.ENOTTY)
        return self._tty_ioctl(t, cmd, arg)

    def _tty_ioctl(self, t: Task, cmd: int, arg: int) -> int:
        # Job control is the sentry's (tty.py); attributes are the host's.
        tty = self.terminal(t)
        if cmd in _TTY_CHANGES:
            tty.check_background(t, S.SIGTTOU)
        if cmd == I.TIOCSCTTY:
            tty.set_controlling(t, arg == 1)
            return 0
        if cmd == I.TIOCNOTTY:
            tty.release_controlling(t)
            return 0
        if cmd == I.TIOCGPGRP:
            t.mm.write_i32(arg, tty.foreground_pgid(t))
            return 0
        if cmd == I.TIOCSPGRP:
            tty.set_foreground(t, t.mm.read_i32(arg))
            return 0
        if cmd == I.TIOCGSID:
            t.mm.write_i32(arg, tty.session_id(t))
            return 0
        if cmd in (I.TCGETS, I.TIOCGWINSZ, I.FIONREAD, I.TIOCOUTQ):
            size = {I.TCGETS: I.TERMIOS_SIZE, I.TIOCGWINSZ: I.WINSIZE_SIZE}.get(cmd, 4)
            try:
                buf = host_fcntl.ioctl(self.host_fd, cmd, b"\0" * size)
            except OSError as e:
                raise SyscallError(e.errno or errno.ENOTTY) from None
            t.copy_out(arg, buf)
            return 0
        if cmd in (I.TCSETS, I.TCSETSW, I.TCSETSF, I.TIOCSWINSZ):
            size = I.WINSIZE_SIZE if cmd == I.TIOCSWINSZ else I.TERMIOS_SIZE
            data = t.copy_in(arg, size)
            try:
                host_fcntl.ioctl(self.host_fd, cmd, data)
            except OSError as e:
                raise SyscallError(e.errno or errno.EINVAL) from None
            return 0
        raise SyscallError(errno.ENOTTY)
