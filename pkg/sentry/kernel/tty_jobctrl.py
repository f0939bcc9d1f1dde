"""Terminal job control (drivers/tty/tty_jobctrl.c): controlling
terminals of sessions, foreground process groups, and the signals that
stop background processes that touch their terminal.

A terminal (a devpts pseudo-terminal, or the host terminal a container was
started on) subclasses JobControlTTY; the session it controls and the
session's foreground group live in the kernel's Session (sessions.py), all
under the TaskSet's lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import signal as SIG
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_SYS_ADMIN
from pkg.sentry.kernel.sessions import (
    signal_process_group_locked,
    will_become_orphaned_locked,
)

if TYPE_CHECKING:
    from pkg.sentry.kernel.kernel import Kernel
    from pkg.sentry.kernel.sessions import ProcessGroup, Session
    from pkg.sentry.kernel.task import Task


def session_of(t: Task) -> Session | None:
    """Returns t's session."""
    pg = t.tg.process_group
    return pg.session if pg is not None else None


def _controlled_session_of(t: Task) -> Session | None:
    """Returns t's session if t has its terminal as controlling terminal
    (not given up by TIOCNOTTY)."""
    if t.tg.ctty_detached:
        return None
    return session_of(t)


class JobControlTTY:
    """JobControlTTY is the job-control side of a terminal.

    Attributes:
        kernel: the kernel.
        session: the session it controls, if any (the TaskSet's mu).
    """

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.session: Session | None = None

    # Attaching (the TaskSet's mu held).

    def is_free_locked(self) -> bool:
        """Reports whether no session holds the terminal. Unlike Linux,
        which disassociates it when the session leader exits, a session
        whose leader has been reaped lets it go only here, when another
        session asks for it."""
        session = self.session
        if session is None:
            return True
        if session.leader is None:
            self.detach_locked(session)
            return True
        return False

    def attach_locked(self, session: Session, pg: ProcessGroup | None) -> None:
        """Makes this session's controlling terminal with pg in the
        foreground."""
        session.tty = self
        session.foreground = pg
        self.session = session

    def detach_locked(self, session: Session) -> None:
        """Makes session lose this controlling terminal."""
        session.tty = None
        session.foreground = None
        self.session = None

    def acquire_on_open(self, t: Task) -> None:
        """Makes this the controlling terminal of t's session if t leads a
        session without one and the terminal is free (tty_open_proc_set_tty,
        for an open without O_NOCTTY)."""
        with self.kernel.tasks.mu:
            session = session_of(t)
            if (
                session is not None
                and session.leader is t.tg
                and session.tty is None
                and self.is_free_locked()
            ):
                self.attach_locked(session, t.tg.process_group)

    # The requests.

    def set_controlling(self, t: Task, steal: bool) -> None:
        """TIOCSCTTY.

        Raises:
            SyscallError: EPERM unless the caller leads a session without
                a controlling terminal and the terminal is nobody's (or
                steal is asked with CAP_SYS_ADMIN).
        """
        with self.kernel.tasks.mu:
            session = session_of(t)
            if session is None:
                raise SyscallError(errno.EPERM)
            if session.tty is self:
                return
            if session.leader is not t.tg or session.tty is not None:
                raise SyscallError(errno.EPERM)
            if not self.is_free_locked():
                assert self.session is not None
                if not steal or not t.creds.has_capability(CAP_SYS_ADMIN):
                    raise SyscallError(errno.EPERM)
                self.detach_locked(self.session)
            self.attach_locked(session, t.tg.process_group)

    def release_controlling(self, t: Task) -> None:
        """TIOCNOTTY: the calling process gives the terminal up; when it
        leads the session, the whole session loses it and the foreground
        group gets SIGHUP and SIGCONT (disassociate_ctty).

        Raises:
            SyscallError: ENOTTY if this is not the caller's controlling
                terminal.
        """
        with self.kernel.tasks.mu:
            session = self._check_controlling_locked(t)
            if session.leader is not t.tg:
                # Only this process forgets it (proc_clear_tty); the rest
                # of the session keeps it.
                t.tg.ctty_detached = True
                return
            pg = session.foreground
            self.detach_locked(session)
            if pg is not None:
                signal_process_group_locked(pg, SIG.SIGHUP)
                signal_process_group_locked(pg, SIG.SIGCONT)

    def hang_up_session(self) -> None:
        """The terminal went away (its master closed): the session loses it
        and its leader's group gets SIGHUP and SIGCONT (tty_vhangup)."""
        with self.kernel.tasks.mu:
            session = self.session
            if session is None:
                return
            self.detach_locked(session)
            leader = session.leader
            if leader is not None and leader.process_group is not None:
                signal_process_group_locked(leader.process_group, SIG.SIGHUP)
                signal_process_group_locked(leader.process_group, SIG.SIGCONT)

    def _check_controlling_locked(self, t: Task) -> Session:
        session = _controlled_session_of(t)
        if session is None or session.tty is not self:
            raise SyscallError(errno.ENOTTY)
        return session

    def foreground_pgid(self, t: Task) -> int:
        """TIOCGPGRP: the foreground group, or 0 if it has none.

        Raises:
            SyscallError: ENOTTY if this is not the caller's controlling
                terminal.
        """
        with self.kernel.tasks.mu:
            pg = self._check_controlling_locked(t).foreground
            return pg.pgid if pg is not None else 0

    def set_foreground(self, t: Task, pgid: int) -> None:
        """TIOCSPGRP (after check_background with SIGTTOU).

        Raises:
            SyscallError: ENOTTY if not the caller's controlling terminal,
                EINVAL for a negative id, ESRCH for no such group, EPERM
                for a group of another session.
        """
        if pgid < 0:
            raise SyscallError(errno.EINVAL)
        ts = self.kernel.tasks
        with ts.mu:
            session = self._check_controlling_locked(t)
            pg = ts.process_groups.get(pgid)
            if pg is None:
                raise SyscallError(errno.ESRCH)
            if pg.session is not session:
                raise SyscallError(errno.EPERM)
            session.foreground = pg

    def session_id(self, t: Task) -> int:
        """TIOCGSID.

        Raises:
            SyscallError: ENOTTY if not the caller's controlling terminal.
        """
        with self.kernel.tasks.mu:
            return self._check_controlling_locked(t).sid

    def signal_foreground(self, signo: int) -> bool:
        """Sends signo to the foreground group (a character typed, a window
        change); returns whether there was one."""
        with self.kernel.tasks.mu:
            session = self.session
            pg = session.foreground if session is not None else None
            if pg is None:
                return False
            signal_process_group_locked(pg, signo)
            return True

    def check_background(self, t: Task, signo: int) -> None:
        """Stops a background process that touches its controlling
        terminal (__tty_check_change for SIGTTOU, job_control for
        SIGTTIN): its group gets signo and the call restarts once it is
        continued. A process that ignores or blocks the signal proceeds
        (SIGTTOU) or fails with EIO (SIGTTIN), as does one in an orphaned
        group.

        Raises:
            SyscallError: ERESTARTSYS after sending the signal, EIO.
        """
        ts = self.kernel.tasks
        with ts.mu:
            session = _controlled_session_of(t)
            if session is None or session.tty is not self:
                return
            pg = t.tg.process_group
            fg = session.foreground
            if pg is None or fg is None or pg is fg:
                return
            handler = t.tg.signal_handlers.actions[signo].handler
            ignored = handler == SIG.SIG_IGN or t.signal_mask & (1 << (signo - 1))
            if ignored:
                if signo == SIG.SIGTTIN:
                    raise SyscallError(errno.EIO)
                return
            if will_become_orphaned_locked(pg, None):
                raise SyscallError(errno.EIO)
            signal_process_group_locked(pg, signo)
        raise SyscallError(errno.ERESTARTSYS)
