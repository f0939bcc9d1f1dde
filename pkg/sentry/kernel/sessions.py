"""Sessions and process groups (kernel/sys.c setsid/setpgid, kernel/exit.c
orphaned process groups).

Every process belongs to one process group, and every process group to one
session. A process group is named by the id of the process that created it
and lives while it has members; so does a session. Both hold a reference to
their id in the TaskSet, so the number is not given to a new process while
the group exists.

A process group is orphaned when no member has a parent in a different
process group of the same session (POSIX.1 "orphaned process group"). When a
process exit or a reparenting orphans a group that has stopped members, every
member gets SIGHUP and then SIGCONT, as kill_orphaned_pgrp does.

Every function here expects TaskSet.mu held.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import signal as S
from pkg.sentry.kernel.signals import SignalInfo
from pkg.sentry.kernel.task_signals import send_to_thread_group

if TYPE_CHECKING:
    from pkg.sentry.kernel.task_set import TaskSet
    from pkg.sentry.kernel.thread_group import ThreadGroup


class Session:
    """Session is a set of process groups (struct pid of PIDTYPE_SID).

    Attributes:
        sid: the session id, the id of the process that created it.
        leader: that process while it is not reaped.
        process_groups: the live process groups of the session.
        foreground: the foreground process group of the controlling
            terminal, if any (set by the terminal code).
        tty: the controlling terminal, an object of the terminal code.
    """

    __slots__ = ("foreground", "leader", "process_groups", "sid", "tty")

    def __init__(self, sid: int, leader: ThreadGroup) -> None:
        self.sid = sid
        self.leader: ThreadGroup | None = leader
        self.process_groups: list[ProcessGroup] = []
        self.foreground: ProcessGroup | None = None
        self.tty: object | None = None

    def __repr__(self) -> str:
        return f"Session(sid={self.sid})"


class ProcessGroup:
    """ProcessGroup is a set of processes (struct pid of PIDTYPE_PGID).

    Attributes:
        pgid: the id of the process that created it.
        session: the session it belongs to, fixed for its lifetime.
        members: the processes in the group, zombies included until reaped.
    """

    __slots__ = ("members", "pgid", "session")

    def __init__(self, pgid: int, session: Session) -> None:
        self.pgid = pgid
        self.session = session
        self.members: list[ThreadGroup] = []

    def __repr__(self) -> str:
        return f"ProcessGroup(pgid={self.pgid})"


def controlling_tty_locked(tg: ThreadGroup) -> object | None:
    """Returns the controlling terminal of a process: its session's, unless
    the process gave it up with TIOCNOTTY without leading the session
    (Linux keeps the terminal per process, in signal->tty).

    Preconditions: the TaskSet's mu is held.
    """
    pg = tg.process_group
    if pg is None or tg.ctty_detached:
        return None
    return pg.session.tty


def new_session_locked(ts: TaskSet, tg: ThreadGroup) -> Session:
    """Makes tg the leader of a new session and of a new process group in
    it, both named after tg (setsid, and the container's first process).

    Preconditions: ts.mu is held; no process group or session has tg's id.
    """
    session = Session(tg.tgid, tg)
    # A new session starts without a terminal to detach from.
    tg.ctty_detached = False
    ts.ref_id(tg.tgid)
    ts.sessions[tg.tgid] = session
    pg = _new_process_group_locked(ts, tg.tgid, session)
    join_process_group_locked(ts, tg, pg)
    return session


def _new_process_group_locked(ts: TaskSet, pgid: int, session: Session) -> ProcessGroup:
    pg = ProcessGroup(pgid, session)
    ts.ref_id(pgid)
    ts.process_groups[pgid] = pg
    session.process_groups.append(pg)
    return pg


def new_process_group_locked(ts: TaskSet, tg: ThreadGroup) -> ProcessGroup:
    """Creates a process group named after tg in tg's session and moves tg
    into it (setpgid(pid, pid)).

    Preconditions: ts.mu is held.
    """
    pg = _new_process_group_locked(ts, tg.tgid, tg.process_group.session)
    join_process_group_locked(ts, tg, pg)
    return pg


def join_process_group_locked(ts: TaskSet, tg: ThreadGroup, pg: ProcessGroup) -> None:
    """Moves tg from its process group (if any) into pg.

    Preconditions: ts.mu is held.
    """
    old = tg.process_group
    if old is pg:
        return
    pg.members.append(tg)
    tg.process_group = pg
    if old is not None:
        _remove_member_locked(ts, old, tg)


def leave_process_group_locked(ts: TaskSet, tg: ThreadGroup) -> None:
    """Removes a reaped process from its process group and session.

    Preconditions: ts.mu is held.
    """
    pg = tg.process_group
    if pg is None:
        return
    session = pg.session
    if session.leader is tg:
        session.leader = None
    _remove_member_locked(ts, pg, tg)


def _remove_member_locked(ts: TaskSet, pg: ProcessGroup, tg: ThreadGroup) -> None:
    pg.members.remove(tg)
    if pg.members:
        return
    # The last member left: the group goes away, and with its last group
    # the session.
    del ts.process_groups[pg.pgid]
    ts.release_id(pg.pgid)
    session = pg.session
    session.process_groups.remove(pg)
    if session.foreground is pg:
        session.foreground = None
    if not session.process_groups:
        del ts.sessions[session.sid]
        ts.release_id(session.sid)


def _process_alive(tg: ThreadGroup) -> bool:
    return not tg.zombie and bool(tg.tasks)


def will_become_orphaned_locked(pg: ProcessGroup, ignored: ThreadGroup | None) -> bool:
    """Reports whether pg is orphaned, not counting ignored
    (will_become_orphaned_pgrp).

    A member links the group to its session when its parent is in another
    process group of the same session. Dead members and members whose
    parent is outside the sandbox (the container's init) do not count.

    Preconditions: the TaskSet's mu is held.
    """
    for tg in pg.members:
        if tg is ignored or not _process_alive(tg):
            continue
        parent = tg.parent
        if parent is None:
            continue
        ppg = parent.process_group
        if ppg is not pg and ppg.session is pg.session:
            return False
    return True


def has_stopped_jobs_locked(pg: ProcessGroup) -> bool:
    """Reports whether a member of pg is in a group stop.

    Preconditions: the TaskSet's mu is held.
    """
    return any(tg.stopped for tg in pg.members)


def kill_orphaned_pgrp_locked(tg: ThreadGroup, parent: ThreadGroup | None) -> None:
    """Sends SIGHUP and SIGCONT to tg's process group if the exit of tg (or,
    with parent given, tg's move away from parent) orphans it while some of
    its members are stopped (kill_orphaned_pgrp).

    Args:
        tg: the exiting process, or the reparented child.
        parent: None when tg exits (its own parent is checked); the old
            parent when tg is reparented.

    Preconditions: the TaskSet's mu is held.
    """
    pg = tg.process_group
    if pg is None:
        return
    ignored: ThreadGroup | None = None
    if parent is None:
        parent = tg.parent
        ignored = tg
    if parent is None or parent.process_group is None:
        return
    ppg = parent.process_group
    if (
        ppg is not pg
        and ppg.session is pg.session
        and will_become_orphaned_locked(pg, ignored)
        and has_stopped_jobs_locked(pg)
    ):
        signal_process_group_locked(pg, S.SIGHUP)
        signal_process_group_locked(pg, S.SIGCONT)


def signal_process_group_locked(pg: ProcessGroup, signo: int) -> None:
    """Sends a kernel-generated signal to every member of pg.

    Preconditions: the TaskSet's mu is held.
    """
    for tg in list(pg.members):
        send_to_thread_group(tg, SignalInfo(signo=signo, code=S.SI_KERNEL))


def process_group_members(ts: TaskSet, pgid: int) -> list[ThreadGroup]:
    """Returns the members of process group pgid (empty if none), for
    kill(-pgid) and the like."""
    with ts.mu:
        pg = ts.process_groups.get(pgid)
        return list(pg.members) if pg is not None else []
