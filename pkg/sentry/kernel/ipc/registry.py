"""The part every System V IPC kind shares: keys, ids and permissions.

Shared memory segments, semaphore sets and message queues each live in a
Registry of their own (ipc/util.c's ipc_ids). An object is found by its key
(shmget, semget, msgget) or by its id, which is the slot index plus a
sequence number times IPCMNI, so that a stale id of a removed object does not
find a new one in the same slot. Every object carries a Perm (struct
kern_ipc_perm) checked as ipcperms() does.

Each Registry has one lock, which guards the table and the mutable state of
every object in it. Callers never hold it while calling into the memory
manager (shmat maps with it released).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from pkg.abi.linux import errno
from pkg.abi.linux import ipc as I
from pkg.abi.linux.capability import CAP_IPC_OWNER, CAP_SYS_ADMIN
from pkg.errors.syscall_error import SyscallError

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials


def now() -> int:
    """Returns the CLOCK_REALTIME seconds IPC timestamps record."""
    return int(time.time())


@dataclass(slots=True)
class Perm:
    """Perm is the ownership and mode of an IPC object (kern_ipc_perm).

    Attributes:
        key: the key it was created with, IPC_PRIVATE once removed.
        uid, gid: the owner, changeable by IPC_SET.
        cuid, cgid: the creator.
        mode: the permission bits and kind-specific flags (SHM_DEST...).
        seq: the sequence number part of the id.
        id: the id user space sees.
    """

    key: int
    uid: int
    gid: int
    cuid: int
    cgid: int
    mode: int
    seq: int = 0
    id: int = -1

    def pack(self) -> bytes:
        """Returns the struct ipc64_perm."""
        return I.IPC64_PERM.pack(
            self.key, self.uid, self.gid, self.cuid, self.cgid, self.mode,
            self.seq, 0, 0, 0,
        )  # fmt: skip

    def check(self, creds: Credentials, flag: int) -> bool:
        """Reports whether creds may access the object for the permission
        bits in flag (ipcperms: the owner's, group's or others' bits,
        whichever class creds belong to; CAP_IPC_OWNER overrides)."""
        requested = (flag >> 6 | flag >> 3 | flag) & 0o7
        granted = self.mode
        if creds.euid in (self.cuid, self.uid):
            granted >>= 6
        elif creds.in_group(self.cgid) or creds.in_group(self.gid):
            granted >>= 3
        if requested & ~granted & 0o7:
            return creds.has_capability(CAP_IPC_OWNER)
        return True

    def check_owner(self, creds: Credentials) -> None:
        """Raises EPERM unless creds own or created the object or have
        CAP_SYS_ADMIN (ipcctl_obtain_check, for IPC_SET and IPC_RMID)."""
        if creds.euid in (self.uid, self.cuid):
            return
        if not creds.has_capability(CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM)

    def set(self, uid: int, gid: int, mode: int) -> None:
        """Applies IPC_SET's owner and permission bits (ipc_update_perm)."""
        self.uid = uid
        self.gid = gid
        self.mode = (self.mode & ~I.S_IRWXUGO) | (mode & I.S_IRWXUGO)


class IPCObject:
    """IPCObject is what a Registry holds: anything with a Perm."""

    __slots__ = ("perm",)

    def __init__(self, perm: Perm) -> None:
        self.perm = perm


Obj = TypeVar("Obj", bound=IPCObject)


def new_perm(creds: Credentials, key: int, flags: int) -> Perm:
    """Returns the Perm of an object creds create with key and flags."""
    return Perm(
        key=key,
        uid=creds.euid,
        gid=creds.egid,
        cuid=creds.euid,
        cgid=creds.egid,
        mode=flags & I.S_IRWXUGO,
    )


class Registry(Generic[Obj]):
    """Registry is the table of one kind of IPC object in a namespace.

    Attributes:
        mu: guards the table and every object's mutable state.
        limit: the most objects there may be (shmmni, semmni, msgmni).
    """

    def __init__(self, limit: int) -> None:
        self.mu = threading.Lock()
        self.limit = limit
        self._by_index: dict[int, Obj] = {}
        self._by_key: dict[int, Obj] = {}
        self._seq = 0
        self._last_idx = -1

    def __len__(self) -> int:
        return len(self._by_index)

    def objects_locked(self) -> Iterator[Obj]:
        """Yields the objects by index."""
        for idx in sorted(self._by_index):
            yield self._by_index[idx]

    def max_index_locked(self) -> int:
        """Returns the highest index in use, or -1 (what IPC_INFO and the
        *_INFO commands return)."""
        return max(self._by_index, default=-1)

    def get_locked(
        self,
        creds: Credentials,
        key: int,
        flags: int,
        create: Callable[[Perm], Obj],
        more_checks: Callable[[Obj], None] | None = None,
    ) -> Obj:
        """Finds or creates the object for key as the *get calls do
        (ipcget_new and ipcget_public).

        Args:
            create: makes a new object with the given Perm; may raise.
            more_checks: validates an existing object against the call's
                arguments before permissions are checked (shm's size).

        Raises:
            SyscallError: ENOENT, EEXIST, EACCES, ENOSPC, or what create and
                more_checks raise.
        """
        if key != I.IPC_PRIVATE:
            obj = self._by_key.get(key)
            if obj is not None:
                if flags & I.IPC_CREAT and flags & I.IPC_EXCL:
                    raise SyscallError(errno.EEXIST)
                if more_checks is not None:
                    more_checks(obj)
                if not obj.perm.check(creds, flags):
                    raise SyscallError(errno.EACCES)
                return obj
            if not flags & I.IPC_CREAT:
                raise SyscallError(errno.ENOENT)
        if len(self._by_index) >= self.limit:
            raise SyscallError(errno.ENOSPC)
        obj = create(new_perm(creds, key, flags))
        self._add_locked(obj)
        return obj

    def _add_locked(self, obj: Obj) -> None:
        # Slots are taken cyclically after the last one, and the sequence
        # number moves on each time the search wraps around, as
        # ipc_idr_alloc does: a removed object's id stays invalid for long.
        idx = (self._last_idx + 1) % I.IPCMNI
        while idx in self._by_index:
            idx = (idx + 1) % I.IPCMNI
        if idx <= self._last_idx:
            self._seq = (self._seq + 1) % I.SEQ_MAX
        self._last_idx = idx
        perm = obj.perm
        perm.seq = self._seq
        perm.id = idx + (perm.seq << I.IPCMNI_SHIFT)
        self._by_index[idx] = obj
        if perm.key != I.IPC_PRIVATE:
            self._by_key[perm.key] = obj

    def find_locked(self, ident: int) -> Obj:
        """Returns the object with id ident.

        Raises:
            SyscallError: EINVAL if there is none (or ident is stale).
        """
        if ident < 0:
            raise SyscallError(errno.EINVAL)
        obj = self._by_index.get(ident % I.IPCMNI)
        if obj is None or obj.perm.id != ident:
            raise SyscallError(errno.EINVAL)
        return obj

    def find_index_locked(self, idx: int) -> Obj:
        """Returns the object in slot idx (the *_STAT commands).

        Raises:
            SyscallError: EINVAL if the slot is empty.
        """
        obj = self._by_index.get(idx)
        if obj is None:
            raise SyscallError(errno.EINVAL)
        return obj

    def unlink_key_locked(self, obj: Obj) -> None:
        """Makes obj unreachable by key (a segment removed while attached
        stays reachable by id with key IPC_PRIVATE, as in Linux)."""
        if obj.perm.key != I.IPC_PRIVATE and self._by_key.get(obj.perm.key) is obj:
            del self._by_key[obj.perm.key]
        obj.perm.key = I.IPC_PRIVATE

    def remove_locked(self, obj: Obj) -> None:
        """Removes obj from the table."""
        self.unlink_key_locked(obj)
        idx = obj.perm.id % I.IPCMNI
        if self._by_index.get(idx) is obj:
            del self._by_index[idx]
