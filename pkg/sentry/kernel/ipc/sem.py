"""System V semaphore sets (semget(2), semop(2), semtimedop(2), semctl(2)).

A semop call applies all its operations atomically or none of them. One
that cannot proceed either fails (IPC_NOWAIT: EAGAIN) or waits in its set's
queue; every change of a set's values retries the queue in arrival order, as
ipc/sem.c's update_queue does, and hands each waiter that now completes its
result. A waiter is never restarted after a signal: semop returns EINTR
(signal(7)), and EAGAIN when its timeout passes.

SEM_UNDO records, per process, the opposite of each operation; when the
process's last thread exits the adjustments are applied, clamped to the
valid range (exit_sem). SETVAL and SETALL clear the adjustments of the
values they set.

TODO(#5): the undo list belongs to the process (ThreadGroup); Linux shares
it between processes created with CLONE_SYSVSEM but not CLONE_THREAD, and
gives a thread created without CLONE_SYSVSEM a list of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import ipc as I
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.ipc.registry import IPCObject, Perm, Registry, now

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task

# One operation: (sem_num, sem_op, sem_flg).
SemOp = tuple[int, int, int]


class _Waiter:
    """_Waiter is one blocked semop (struct sem_queue)."""

    __slots__ = ("blocking", "ops", "pid", "status", "task", "undo")

    def __init__(
        self, task: Task, ops: list[SemOp], undo: list[int] | None, blocking: int
    ) -> None:
        self.task = task
        self.pid = task.pid
        self.ops = ops
        self.undo = undo
        # The index in ops of the operation that blocks (for GETNCNT and
        # GETZCNT, which count only that one, as Linux 4.6+ does).
        self.blocking = blocking
        # None while waiting; then 0 or an errno.
        self.status: int | None = None


class SemSet(IPCObject):
    """SemSet is one semaphore set (struct sem_array)."""

    __slots__ = ("ctime", "otime", "pids", "queue", "values")

    def __init__(self, perm: Perm, nsems: int) -> None:
        super().__init__(perm)
        self.values = [0] * nsems
        self.pids = [0] * nsems
        self.otime = 0
        self.ctime = now()
        self.queue: list[_Waiter] = []

    @property
    def nsems(self) -> int:
        """The number of semaphores."""
        return len(self.values)

    def stat(self) -> bytes:
        """Returns the struct semid64_ds."""
        return self.perm.pack() + I.SEMID64_DS_TAIL.pack(
            self.otime, 0, self.ctime, 0, self.nsems, 0, 0
        )

    def try_ops(
        self, ops: list[SemOp], undo: list[int] | None, pid: int
    ) -> tuple[int, int]:
        """Applies ops if all can proceed (perform_atomic_semop).

        Returns:
            (0, -1) when applied; (1, i) when operation i must wait; or
            (errno, i) for a failure (ERANGE, or EAGAIN for IPC_NOWAIT).
        """
        values = list(self.values)
        adj = list(undo) if undo is not None else None
        for i, (num, op, flg) in enumerate(ops):
            cur = values[num]
            if op == 0:
                if cur != 0:
                    return (errno.EAGAIN if flg & I.IPC_NOWAIT else 1), i
                continue
            result = cur + op
            if result < 0:
                return (errno.EAGAIN if flg & I.IPC_NOWAIT else 1), i
            if result > I.SEMVMX:
                return errno.ERANGE, i
            if flg & I.SEM_UNDO and adj is not None:
                a = adj[num] - op
                if a < -I.SEMAEM - 1 or a > I.SEMAEM:
                    return errno.ERANGE, i
                adj[num] = a
            values[num] = result
        self.values = values
        if undo is not None and adj is not None:
            undo[:] = adj
        for num, _, _ in ops:
            self.pids[num] = pid
        self.otime = now()
        return 0, -1

    def update_queue(self) -> None:
        """Completes every waiter that can now proceed, oldest first, again
        from the start after each one that changed the values."""
        progress = True
        while progress:
            progress = False
            for w in list(self.queue):
                res, idx = self.try_ops(w.ops, w.undo, w.pid)
                if res == 1:
                    w.blocking = idx
                    continue
                self.queue.remove(w)
                w.status = res
                w.task.wake()
                if res == 0 and any(op != 0 for _, op, _ in w.ops):
                    progress = True
                    break

    def count(self, num: int, zero: bool) -> int:
        """Returns GETZCNT (zero) or GETNCNT for semaphore num."""
        n = 0
        for w in self.queue:
            snum, op, _ = w.ops[w.blocking]
            if snum == num and ((op == 0) if zero else (op < 0)):
                n += 1
        return n

    def destroy(self) -> None:
        """Wakes every waiter with EIDRM."""
        for w in self.queue:
            w.status = errno.EIDRM
            w.task.wake()
        self.queue.clear()


class SemManager:
    """SemManager holds the semaphore sets of one IPC namespace and the
    SEM_UNDO adjustments of its processes."""

    def __init__(self) -> None:
        self.ids: Registry[SemSet] = Registry(I.SEMMNI)
        # Per process (ThreadGroup): set id -> adjustment per semaphore.
        self._undo: dict[object, dict[int, list[int]]] = {}
        self.total = 0

    def get(self, creds: Credentials, key: int, nsems: int, flags: int) -> int:
        """semget(2): returns the id of the set for key."""
        if nsems < 0 or nsems > I.SEMMSL:
            raise SyscallError(errno.EINVAL)

        def create(perm: Perm) -> SemSet:
            if nsems == 0:
                raise SyscallError(errno.EINVAL)
            if self.total + nsems > I.SEMMNS:
                raise SyscallError(errno.ENOSPC)
            self.total += nsems
            return SemSet(perm, nsems)

        def more_checks(s: SemSet) -> None:
            if nsems > s.nsems:
                raise SyscallError(errno.EINVAL)

        with self.ids.mu:
            return self.ids.get_locked(creds, key, flags, create, more_checks).perm.id

    def remove_all(self) -> None:
        """Removes every set (the namespace is going)."""
        with self.ids.mu:
            for s in list(self.ids.objects_locked()):
                self._remove_locked(s)

    def _remove_locked(self, s: SemSet) -> None:
        self.ids.remove_locked(s)
        self.total -= s.nsems
        s.destroy()
        for undos in self._undo.values():
            undos.pop(s.perm.id, None)

    def _clear_undo_locked(self, s: SemSet, num: int | None) -> None:
        for undos in self._undo.values():
            adj = undos.get(s.perm.id)
            if adj is None:
                continue
            if num is None:
                adj[:] = [0] * len(adj)
            else:
                adj[num] = 0

    def semop(
        self, t: Task, ident: int, ops: list[SemOp], deadline: float | None
    ) -> None:
        """semtimedop(2) once the operations are read.

        Args:
            deadline: a time.monotonic() value, or None.
        """
        max_num = max(num for num, _, _ in ops)
        alter = any(op != 0 for _, op, _ in ops)
        want_undo = any(flg & I.SEM_UNDO for _, _, flg in ops)
        with self.ids.mu:
            s = self.ids.find_locked(ident)
            if max_num >= s.nsems:
                raise SyscallError(errno.EFBIG)
            if not s.perm.check(t.creds, I.S_IWUGO if alter else I.S_IRUGO):
                raise SyscallError(errno.EACCES)
            undo = None
            if want_undo:
                undo = self._undo.setdefault(t.tg, {}).setdefault(
                    s.perm.id, [0] * s.nsems
                )
            res, idx = s.try_ops(ops, undo, t.pid)
            if res == 0:
                if alter:
                    s.update_queue()
                return
            if res != 1:
                raise SyscallError(res)
            w = _Waiter(t, ops, undo, idx)
            s.queue.append(w)
        try:
            while w.status is None:
                t.block(deadline)
        except SyscallError as e:
            with self.ids.mu:
                if w.status is None:
                    if w in s.queue:
                        s.queue.remove(w)
                    if e.errno == errno.ETIMEDOUT:
                        raise SyscallError(errno.EAGAIN) from None
                    # semop is never restarted (signal(7)).
                    raise SyscallError(errno.EINTR) from None
        if w.status:
            raise SyscallError(w.status)

    def undo_list(self, tg: object) -> object | None:
        """Returns the undo list of tg's process, None if it has made no
        SEM_UNDO operation (what kcmp(2)'s KCMP_SYSVSEM compares)."""
        with self.ids.mu:
            return self._undo.get(tg)

    def exit_undo(self, t: Task) -> None:
        """Applies the SEM_UNDO adjustments of t's process, whose last
        thread is exiting (exit_sem)."""
        with self.ids.mu:
            undos = self._undo.pop(t.tg, None)
            if not undos:
                return
            for ident, adj in undos.items():
                try:
                    s = self.ids.find_locked(ident)
                except SyscallError:
                    continue
                changed = False
                for num, a in enumerate(adj):
                    if a == 0:
                        continue
                    s.values[num] = min(max(s.values[num] + a, 0), I.SEMVMX)
                    s.pids[num] = t.pid
                    changed = True
                if changed:
                    s.update_queue()

    def ctl(self, t: Task, ident: int, num: int, cmd: int, arg: int) -> int:
        """semctl(2); arg is the semun argument (a value or an address)."""
        if cmd in (I.IPC_INFO, I.SEM_INFO):
            with self.ids.mu:
                if cmd == I.SEM_INFO:
                    semusz, semaem = len(self.ids), self.total
                else:
                    semusz, semaem = I.SEMUSZ, I.SEMAEM
                info = I.SEMINFO.pack(
                    I.SEMMAP, I.SEMMNI, I.SEMMNS, I.SEMMNU, I.SEMMSL,
                    I.SEMOPM, I.SEMUME, semusz, I.SEMVMX, semaem,
                )  # fmt: skip
                ret = max(self.ids.max_index_locked(), 0)
            t.copy_out(arg, info)
            return ret
        if cmd in (I.IPC_STAT, I.SEM_STAT, I.SEM_STAT_ANY):
            with self.ids.mu:
                if cmd == I.IPC_STAT:
                    s = self.ids.find_locked(ident)
                    ret = 0
                else:
                    s = self.ids.find_index_locked(ident)
                    ret = s.perm.id
                if cmd != I.SEM_STAT_ANY and not s.perm.check(t.creds, I.S_IRUGO):
                    raise SyscallError(errno.EACCES)
                data = s.stat()
            t.copy_out(arg, data)
            return ret
        if cmd == I.IPC_SET:
            _, uid, gid, _, _, mode, *_ = I.IPC64_PERM.unpack(
                t.copy_in(arg, I.IPC64_PERM.size)
            )
            with self.ids.mu:
                s = self.ids.find_locked(ident)
                s.perm.check_owner(t.creds)
                s.perm.set(uid, gid, mode)
                s.ctime = now()
            return 0
        if cmd == I.IPC_RMID:
            with self.ids.mu:
                s = self.ids.find_locked(ident)
                s.perm.check_owner(t.creds)
                self._remove_locked(s)
            return 0
        if cmd == I.SETALL:
            return self._setall(t, ident, arg)
        if cmd not in (I.GETVAL, I.GETPID, I.GETNCNT, I.GETZCNT, I.GETALL, I.SETVAL):
            raise SyscallError(errno.EINVAL)
        with self.ids.mu:
            s = self.ids.find_locked(ident)
            acc = I.S_IWUGO if cmd == I.SETVAL else I.S_IRUGO
            if not s.perm.check(t.creds, acc):
                raise SyscallError(errno.EACCES)
            if cmd == I.GETALL:
                values = list(s.values)
            else:
                if num < 0 or num >= s.nsems:
                    raise SyscallError(errno.EINVAL)
                if cmd == I.GETVAL:
                    return s.values[num]
                if cmd == I.GETPID:
                    return s.pids[num]
                if cmd == I.GETNCNT:
                    return s.count(num, zero=False)
                if cmd == I.GETZCNT:
                    return s.count(num, zero=True)
                # SETVAL.
                val = arg & 0xFFFFFFFF
                val = val - (1 << 32) if val >= 1 << 31 else val
                if val < 0 or val > I.SEMVMX:
                    raise SyscallError(errno.ERANGE)
                self._clear_undo_locked(s, num)
                s.values[num] = val
                s.pids[num] = t.pid
                s.ctime = now()
                s.update_queue()
                return 0
        t.copy_out(arg, b"".join(v.to_bytes(2, "little") for v in values))
        return 0

    def _setall(self, t: Task, ident: int, addr: int) -> int:
        with self.ids.mu:
            nsems = self.ids.find_locked(ident).nsems
        data = t.copy_in(addr, 2 * nsems)
        values = [
            int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data), 2)
        ]
        with self.ids.mu:
            s = self.ids.find_locked(ident)
            if not s.perm.check(t.creds, I.S_IWUGO):
                raise SyscallError(errno.EACCES)
            if s.nsems != nsems:
                raise SyscallError(errno.EIDRM)
            if any(v > I.SEMVMX for v in values):
                raise SyscallError(errno.ERANGE)
            self._clear_undo_locked(s, None)
            s.values = values
            s.pids = [t.pid] * nsems
            s.ctime = now()
            s.update_queue()
        return 0

    def proc_lines(self) -> list[str]:
        """Returns /proc/sysvipc/sem."""
        out = [
            "       key      semid perms      nsems   uid   gid  cuid  cgid"
            "      otime      ctime\n"
        ]
        with self.ids.mu:
            for s in self.ids.objects_locked():
                p = s.perm
                out.append(
                    f"{p.key:10d} {p.id:10d}  {p.mode & 0o7777:4o} {s.nsems:10d} "
                    f"{p.uid:5d} {p.gid:5d} {p.cuid:5d} {p.cgid:5d} "
                    f"{s.otime:10d} {s.ctime:10d}\n"
                )
        return out
