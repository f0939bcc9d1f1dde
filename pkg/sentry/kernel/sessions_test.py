"""Tests of process group and session bookkeeping (sessions.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pkg.sentry.kernel import sessions as SS
from pkg.sentry.kernel.task_set import TaskSet


@dataclass(eq=False)
class FakeProcess:
    """The parts of a ThreadGroup the sessions code reads."""

    tgid: int
    parent: FakeProcess | None = None
    zombie: bool = False
    stopped: bool = False
    tasks: list[object] = field(default_factory=lambda: [object()])
    process_group: SS.ProcessGroup | None = None


def _process(ts: TaskSet, parent: FakeProcess | None = None) -> FakeProcess:
    with ts.mu:
        p = FakeProcess(ts.allocate_id(), parent)
        if parent is not None:
            SS.join_process_group_locked(ts, p, parent.process_group)
    return p


def test_session_and_group_hold_their_ids() -> None:
    ts = TaskSet()
    init = _process(ts)
    with ts.mu:
        SS.new_session_locked(ts, init)
    child = _process(ts, init)
    with ts.mu:
        SS.new_process_group_locked(ts, child)
        assert child.process_group.pgid == child.tgid
        assert child.process_group.session is init.process_group.session
        # The process goes away; its group keeps the id in use while the
        # group lives.
        ts.release_id(child.tgid)
        assert ts.id_in_use(child.tgid)
        SS.leave_process_group_locked(ts, child)
        assert not ts.id_in_use(child.tgid)
        assert child.tgid not in ts.process_groups


def test_group_outlives_its_creator_while_members_remain() -> None:
    ts = TaskSet()
    init = _process(ts)
    with ts.mu:
        SS.new_session_locked(ts, init)
    leader = _process(ts, init)
    member = _process(ts, init)
    with ts.mu:
        pg = SS.new_process_group_locked(ts, leader)
        SS.join_process_group_locked(ts, member, pg)
        SS.leave_process_group_locked(ts, leader)
        ts.release_id(leader.tgid)
        assert ts.process_groups[leader.tgid] is pg
        assert ts.id_in_use(leader.tgid)
        assert SS.process_group_members(ts, leader.tgid) == [member]


def test_orphaned_when_no_member_has_a_parent_in_another_group() -> None:
    ts = TaskSet()
    init = _process(ts)
    with ts.mu:
        SS.new_session_locked(ts, init)
    shell = _process(ts, init)
    job = _process(ts, shell)
    with ts.mu:
        SS.new_process_group_locked(ts, shell)
        pg = SS.new_process_group_locked(ts, job)
        # The shell (another group, same session) is the job's parent.
        assert not SS.will_become_orphaned_locked(pg, None)
        # Without the shell counted, nothing connects the job.
        job.parent = None
        assert SS.will_become_orphaned_locked(pg, None)
