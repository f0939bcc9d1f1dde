"""Tests for container state files and locking."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from runsc.container.state import (
    CREATED,
    ContainerError,
    NotExistError,
    State,
    StateDir,
    list_ids,
    process_alive,
    process_start_time,
)


def test_state_round_trip(tmp_path: Path) -> None:
    sd = StateDir(str(tmp_path), "c1")
    sd.make()
    st = State(id="c1", bundle="/b", rootfs="/b/r", status=CREATED, pid=5)
    sd.save(st)
    assert sd.load() == st
    assert list_ids(str(tmp_path)) == ["c1"]
    assert st.oci_state("running")["pid"] == 5
    assert st.oci_state("stopped")["pid"] == 0


def test_make_refuses_an_existing_container(tmp_path: Path) -> None:
    StateDir(str(tmp_path), "c1").make()
    with pytest.raises(ContainerError, match="already exists"):
        StateDir(str(tmp_path), "c1").make()


def test_missing_and_corrupt_state(tmp_path: Path) -> None:
    sd = StateDir(str(tmp_path), "c1")
    with pytest.raises(NotExistError), sd.lock():
        pass
    sd.make()
    with pytest.raises(NotExistError):
        sd.load()
    with open(sd.file("state.json"), "w") as f:
        f.write("{nope")
    with pytest.raises(ContainerError, match="corrupt"):
        sd.load()


def test_exclusive_lock_serialises(tmp_path: Path) -> None:
    sd = StateDir(str(tmp_path), "c1")
    sd.make()
    order: list[str] = []
    entered = threading.Event()

    def other() -> None:
        # A separate open file description: flock applies across them.
        with StateDir(str(tmp_path), "c1").lock():
            order.append("other")

    with sd.lock():
        t = threading.Thread(target=other)
        t.start()
        entered.wait(0.2)
        order.append("first")
    t.join()
    assert order == ["first", "other"]


def test_waiter_on_a_deleted_container_sees_it_gone(tmp_path: Path) -> None:
    sd = StateDir(str(tmp_path), "c1")
    sd.make()
    errors: list[BaseException] = []

    def other() -> None:
        try:
            with StateDir(str(tmp_path), "c1").lock():
                pass
        except NotExistError as e:
            errors.append(e)

    with sd.lock():
        t = threading.Thread(target=other)
        t.start()
        time.sleep(0.1)
        sd.remove()
    t.join()
    assert len(errors) == 1


def test_process_identity() -> None:
    start = process_start_time(os.getpid())
    assert start > 0
    assert process_alive(os.getpid(), start)
    assert not process_alive(os.getpid(), start + 1)
    assert not process_alive(0, 0)
