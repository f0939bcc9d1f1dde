"""Container state on disk, and the lock that serialises verbs.

Every container has a directory in the state root (--root):

    ROOT/ID/lock          flock(2)ed by each verb while it reads or changes
                          the container (shared to look, exclusive to change)
    ROOT/ID/state.json    the State below, replaced atomically
    ROOT/ID/config.json   the spec as create read it
    ROOT/ID/control.sock  the sandbox's control socket
    ROOT/ID/exit          the container's exit status, written by the
                          sandbox as it exits

`delete` removes the directory. A verb that waited for the lock of a
container that was deleted meanwhile notices, because its lock file is no
longer the one at the path, and reports that the container does not exist.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from runsc.container.errors import ContainerError, NotExistError

__all__ = [
    "ContainerError",
    "NotExistError",
    "State",
    "StateDir",
]

# OCI statuses.
CREATING = "creating"
CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"

STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
CONTROL_SOCKET = "control.sock"
EXIT_FILE = "exit"
LOCK_FILE = "lock"


@dataclass(slots=True)
class State:
    """State is what the state file records of one container."""

    id: str
    bundle: str
    rootfs: str
    status: str
    # Host pid of the sandbox process, and its start time in clock ticks
    # since boot (/proc/PID/stat field 22) so that a reused pid is noticed.
    pid: int = 0
    pid_start: int = 0
    created: str = ""
    owner: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    # Whether the sandbox process was started attached to `run`.
    attached: bool = False

    def to_json(self) -> str:
        """Returns the state file's contents."""
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, data: str | bytes) -> State:
        """Parses a state file; unknown keys are ignored."""
        raw = json.loads(data)
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def oci_state(self, status: str) -> dict[str, Any]:
        """Returns the state as the OCI runtime spec defines it (for `state`
        and for hooks)."""
        return {
            "ociVersion": "1.0.2",
            "id": self.id,
            "status": status,
            "pid": self.pid if status not in (STOPPED,) else 0,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
            "annotations": self.annotations,
        }


def now_rfc3339() -> str:
    """Returns the current time as the OCI state's `created` field has it."""
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


class StateDir:
    """StateDir is the directory of one container in the state root."""

    def __init__(self, root: str, container_id: str) -> None:
        self.root = root
        self.id = container_id
        self.path = os.path.join(root, container_id)

    def file(self, name: str) -> str:
        """Returns the path of a file in the directory."""
        return os.path.join(self.path, name)

    def exists(self) -> bool:
        """Reports whether the container has a state directory."""
        return os.path.isdir(self.path)

    def make(self) -> None:
        """Creates the directory of a new container.

        Raises:
            ContainerError: a container with this id exists.
        """
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        try:
            os.mkdir(self.path, 0o711)
        except FileExistsError:
            raise ContainerError(f"container {self.id} already exists") from None

    def remove(self) -> None:
        """Removes the directory and the files in it (it holds no
        subdirectories; shutil would cost every verb its imports)."""
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return
        for name in names:
            unlink_quietly(os.path.join(self.path, name))
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(self.path)

    @contextlib.contextmanager
    def lock(self, exclusive: bool = True) -> Iterator[None]:
        """Holds the container's lock.

        Raises:
            NotExistError: the container does not exist (or was deleted
                while this verb waited for the lock).
        """
        path = self.file(LOCK_FILE)
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                raise NotExistError(f"container {self.id} does not exist") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    st = None
                if st is not None and st.st_ino == os.fstat(fd).st_ino:
                    break
            except BaseException:
                os.close(fd)
                raise
            # Deleted or replaced while we waited: look again.
            os.close(fd)
            if not os.path.exists(self.path):
                raise NotExistError(f"container {self.id} does not exist")
        try:
            yield
        finally:
            os.close(fd)

    def load(self) -> State:
        """Reads the state file.

        Raises:
            NotExistError: there is no state file.
            ContainerError: the state file is corrupt.
        """
        try:
            with open(self.file(STATE_FILE), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise NotExistError(f"container {self.id} does not exist") from None
        try:
            return State.from_json(data)
        except (ValueError, TypeError) as e:
            raise ContainerError(f"container {self.id}: corrupt state: {e}") from None

    def save(self, state: State) -> None:
        """Replaces the state file atomically."""
        write_atomic(self.file(STATE_FILE), state.to_json().encode())

    def read_exit_status(self) -> int | None:
        """Returns the wait status the sandbox recorded as it exited."""
        try:
            with open(self.file(EXIT_FILE), "rb") as f:
                data = f.read().strip()
        except FileNotFoundError:
            return None
        try:
            return int(json.loads(data)["status"])
        except (ValueError, KeyError, TypeError):
            return None


def write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    """Writes a file so that readers see the old or the new contents."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def list_ids(root: str) -> list[str]:
    """Returns the ids of every container with a state file in root."""
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if os.path.isfile(os.path.join(root, n, STATE_FILE)))


def process_start_time(pid: int) -> int:
    """Returns a process's start time (/proc/PID/stat field 22), or 0 if it
    does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    # comm may hold spaces and parentheses: split after the last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    return int(fields[19])


def process_alive(pid: int, start: int) -> bool:
    """Reports whether the process pid, started at start, still runs (a
    zombie does not run)."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    fields = data[data.rfind(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return False
    return start == 0 or int(fields[19]) == start


def unlink_quietly(path: str) -> None:
    """Removes a file if it exists."""
    try:
        os.unlink(path)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
