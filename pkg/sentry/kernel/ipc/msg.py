"""System V message queues (msgget(2), msgsnd(2), msgrcv(2), msgctl(2)).

A sender that finds a waiting receiver whose selection matches hands the
message over directly, as ipc/msg.c's pipelined_send does (a receiver whose
buffer is too small without MSG_NOERROR is failed with E2BIG instead, and
the next one is tried); otherwise the message is queued. A sender waits while
the queue is full (its byte count or its message count would pass
msg_qbytes), a receiver while nothing matches. Waits end with EIDRM when the
queue is removed and ERESTARTNOHAND on a signal, so a handler makes the call
fail with EINTR whatever SA_RESTART says (signal(7)).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import ipc as I
from pkg.abi.linux.capability import CAP_SYS_RESOURCE
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.ipc.registry import IPCObject, Perm, Registry, now

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task

# Message selection modes (convert_mode).
SEARCH_ANY = 1
SEARCH_EQUAL = 2
SEARCH_NOTEQUAL = 3
SEARCH_LESSEQUAL = 4
SEARCH_NUMBER = 5

# One message: (mtype, mtext).
Message = tuple[int, bytes]


def _matches(mtype: int, mode: int, want: int) -> bool:
    """Reports whether a message of type mtype is selected (testmsg)."""
    if mode in (SEARCH_ANY, SEARCH_NUMBER):
        return True
    if mode == SEARCH_LESSEQUAL:
        return mtype <= want
    if mode == SEARCH_EQUAL:
        return mtype == want
    return mtype != want


class _Receiver:
    """_Receiver is a blocked msgrcv (struct msg_receiver)."""

    __slots__ = ("flags", "mode", "result", "size", "task", "want")

    def __init__(self, task: Task, mode: int, want: int, size: int, flags: int) -> None:
        self.task = task
        self.mode = mode
        self.want = want
        self.size = size
        self.flags = flags
        # None while waiting; then a Message or an errno.
        self.result: Message | int | None = None


class _Sender:
    """_Sender is a blocked msgsnd (struct msg_sender)."""

    __slots__ = ("status", "task")

    def __init__(self, task: Task) -> None:
        self.task = task
        # None while waiting; 0 to retry, or an errno.
        self.status: int | None = None


class MsgQueue(IPCObject):
    """MsgQueue is one message queue (struct msg_queue)."""

    __slots__ = (
        "cbytes",
        "ctime",
        "lrpid",
        "lspid",
        "messages",
        "qbytes",
        "receivers",
        "rtime",
        "senders",
        "stime",
    )

    def __init__(self, perm: Perm, qbytes: int) -> None:
        super().__init__(perm)
        self.messages: list[Message] = []
        self.cbytes = 0
        self.qbytes = qbytes
        self.stime = 0
        self.rtime = 0
        self.ctime = now()
        self.lspid = 0
        self.lrpid = 0
        self.receivers: list[_Receiver] = []
        self.senders: list[_Sender] = []

    def stat(self) -> bytes:
        """Returns the struct msqid64_ds."""
        return self.perm.pack() + I.MSQID64_DS_TAIL.pack(
            self.stime, self.rtime, self.ctime, self.cbytes, len(self.messages),
            self.qbytes, self.lspid, self.lrpid, 0, 0,
        )  # fmt: skip

    def has_room(self, size: int) -> bool:
        """Reports whether a message of size bytes fits (msg_fits_inqueue)."""
        return (
            self.cbytes + size <= self.qbytes and len(self.messages) + 1 <= self.qbytes
        )

    def wake_senders(self, status: int) -> None:
        """Wakes every waiting sender to retry (0) or fail (an errno)."""
        for s in self.senders:
            s.status = status
            s.task.wake()
        self.senders.clear()

    def hand_over(self, msg: Message) -> bool:
        """Gives msg to the first waiting receiver that takes it
        (pipelined_send); reports whether one did."""
        for r in list(self.receivers):
            if not _matches(msg[0], r.mode, r.want) or r.mode == SEARCH_NUMBER:
                continue
            self.receivers.remove(r)
            if r.size < len(msg[1]) and not r.flags & I.MSG_NOERROR:
                r.result = errno.E2BIG
                r.task.wake()
                continue
            r.result = msg
            r.task.wake()
            return True
        return False

    def find(self, mode: int, want: int) -> int:
        """Returns the index of the message msgrcv selects, or -1."""
        if mode == SEARCH_NUMBER:
            return want if 0 <= want < len(self.messages) else -1
        if mode == SEARCH_LESSEQUAL:
            best = -1
            for i, (mtype, _) in enumerate(self.messages):
                if mtype <= want and (best < 0 or mtype < self.messages[best][0]):
                    best = i
                    if mtype == 1:
                        break
            return best
        for i, (mtype, _) in enumerate(self.messages):
            if _matches(mtype, mode, want):
                return i
        return -1

    def destroy(self) -> None:
        """Fails every waiter with EIDRM."""
        for r in self.receivers:
            r.result = errno.EIDRM
            r.task.wake()
        self.receivers.clear()
        self.wake_senders(errno.EIDRM)


class MsgManager:
    """MsgManager holds the message queues of one IPC namespace."""

    def __init__(self) -> None:
        self.ids: Registry[MsgQueue] = Registry(I.MSGMNI)
        self.msgmax = I.MSGMAX
        self.msgmnb = I.MSGMNB
        self.msgmni = I.MSGMNI
        # Messages and bytes queued in all queues (MSG_INFO).
        self.total_msgs = 0
        self.total_bytes = 0

    def remove_all(self) -> None:
        """Removes every queue (the namespace is going)."""
        with self.ids.mu:
            for q in list(self.ids.objects_locked()):
                self._remove_locked(q)

    def _remove_locked(self, q: MsgQueue) -> None:
        self.ids.remove_locked(q)
        self.total_msgs -= len(q.messages)
        self.total_bytes -= q.cbytes
        q.destroy()

    def get(self, creds: Credentials, key: int, flags: int) -> int:
        """msgget(2): returns the id of the queue for key."""
        with self.ids.mu:
            self.ids.limit = self.msgmni
            q = self.ids.get_locked(
                creds, key, flags, lambda perm: MsgQueue(perm, self.msgmnb)
            )
            return q.perm.id

    def _wait(
        self, t: Task, done: Callable[[], bool], cancel: Callable[[], None]
    ) -> None:
        # Sleeps until done(); on a signal, cancels under the lock unless
        # the wait completed meanwhile.
        try:
            while not done():
                t.block()
        except SyscallError:
            with self.ids.mu:
                if not done():
                    cancel()
                    raise SyscallError(errno.ERESTARTNOHAND) from None

    def send(self, t: Task, ident: int, mtype: int, text: bytes, flags: int) -> None:
        """msgsnd(2) once the message is read."""
        while True:
            with self.ids.mu:
                q = self.ids.find_locked(ident)
                if not q.perm.check(t.creds, I.S_IWUGO):
                    raise SyscallError(errno.EACCES)
                if q.has_room(len(text)):
                    q.lspid = t.pid
                    q.stime = now()
                    if not q.hand_over((mtype, text)):
                        q.messages.append((mtype, text))
                        q.cbytes += len(text)
                        self.total_msgs += 1
                        self.total_bytes += len(text)
                    return
                if flags & I.IPC_NOWAIT:
                    raise SyscallError(errno.EAGAIN)
                s = _Sender(t)
                q.senders.append(s)
            self._wait(
                t,
                lambda s=s: s.status is not None,
                lambda q=q, s=s: q.senders.remove(s) if s in q.senders else None,
            )
            if s.status:
                raise SyscallError(s.status)

    def receive(self, t: Task, ident: int, size: int, want: int, flags: int) -> Message:
        """msgrcv(2) up to copying the message out.

        Returns:
            The message, its text already cut to size (MSG_NOERROR).
        """
        if flags & I.MSG_COPY:
            if flags & I.MSG_EXCEPT or not flags & I.IPC_NOWAIT:
                raise SyscallError(errno.EINVAL)
            mode = SEARCH_NUMBER
        elif want == 0:
            mode = SEARCH_ANY
        elif want < 0:
            # -LONG_MIN does not fit a long: Linux takes LONG_MAX.
            want = min(-want, (1 << 63) - 1)
            mode = SEARCH_LESSEQUAL
        elif flags & I.MSG_EXCEPT:
            mode = SEARCH_NOTEQUAL
        else:
            mode = SEARCH_EQUAL

        with self.ids.mu:
            q = self.ids.find_locked(ident)
            if not q.perm.check(t.creds, I.S_IRUGO):
                raise SyscallError(errno.EACCES)
            i = q.find(mode, want)
            if i >= 0:
                msg = q.messages[i]
                if size < len(msg[1]) and not flags & I.MSG_NOERROR:
                    raise SyscallError(errno.E2BIG)
                if mode != SEARCH_NUMBER:
                    del q.messages[i]
                    q.cbytes -= len(msg[1])
                    self.total_msgs -= 1
                    self.total_bytes -= len(msg[1])
                    q.rtime = now()
                    q.lrpid = t.pid
                    q.wake_senders(0)
                return msg[0], msg[1][:size]
            if flags & I.IPC_NOWAIT:
                raise SyscallError(errno.ENOMSG)
            r = _Receiver(t, mode, want, size, flags)
            q.receivers.append(r)
        self._wait(
            t,
            lambda: r.result is not None,
            lambda: q.receivers.remove(r) if r in q.receivers else None,
        )
        result = r.result
        if isinstance(result, int):
            raise SyscallError(result)
        assert result is not None
        with self.ids.mu:
            q.rtime = now()
            q.lrpid = t.pid
        return result[0], result[1][:size]

    def ctl(self, t: Task, ident: int, cmd: int, buf: int) -> int:
        """msgctl(2)."""
        if cmd in (I.IPC_INFO, I.MSG_INFO):
            with self.ids.mu:
                if cmd == I.MSG_INFO:
                    pool, mmap, tql = len(self.ids), self.total_msgs, self.total_bytes
                else:
                    pool, mmap, tql = I.MSGPOOL, I.MSGMAP, I.MSGTQL
                info = I.MSGINFO.pack(
                    pool, mmap, self.msgmax, self.msgmnb, self.msgmni, I.MSGSSZ,
                    tql, I.MSGSEG,
                )  # fmt: skip
                ret = max(self.ids.max_index_locked(), 0)
            t.copy_out(buf, info)
            return ret
        if cmd in (I.IPC_STAT, I.MSG_STAT, I.MSG_STAT_ANY):
            with self.ids.mu:
                if cmd == I.IPC_STAT:
                    q = self.ids.find_locked(ident)
                    ret = 0
                else:
                    q = self.ids.find_index_locked(ident)
                    ret = q.perm.id
                if cmd != I.MSG_STAT_ANY and not q.perm.check(t.creds, I.S_IRUGO):
                    raise SyscallError(errno.EACCES)
                data = q.stat()
            t.copy_out(buf, data)
            return ret
        if cmd == I.IPC_SET:
            raw = t.copy_in(buf, I.IPC64_PERM.size + I.MSQID64_DS_TAIL.size)
            _, uid, gid, _, _, mode, *_ = I.IPC64_PERM.unpack_from(raw)
            qbytes = I.MSQID64_DS_TAIL.unpack_from(raw, I.IPC64_PERM.size)[5]
            with self.ids.mu:
                q = self.ids.find_locked(ident)
                q.perm.check_owner(t.creds)
                if qbytes > self.msgmnb and not t.creds.has_capability(
                    CAP_SYS_RESOURCE
                ):
                    raise SyscallError(errno.EPERM)
                q.qbytes = qbytes
                q.perm.set(uid, gid, mode)
                q.ctime = now()
                # The queue may have grown.
                q.wake_senders(0)
            return 0
        if cmd == I.IPC_RMID:
            with self.ids.mu:
                q = self.ids.find_locked(ident)
                q.perm.check_owner(t.creds)
                self._remove_locked(q)
            return 0
        raise SyscallError(errno.EINVAL)

    def proc_lines(self) -> list[str]:
        """Returns /proc/sysvipc/msg."""
        out = [
            "       key      msqid perms      cbytes       qnum lspid lrpid   uid"
            "   gid  cuid  cgid      stime      rtime      ctime\n"
        ]
        with self.ids.mu:
            for q in self.ids.objects_locked():
                p = q.perm
                out.append(
                    f"{p.key:10d} {p.id:10d}  {p.mode & 0o7777:4o}  {q.cbytes:10d} "
                    f"{len(q.messages):10d} {q.lspid:5d} {q.lrpid:5d} "
                    f"{p.uid:5d} {p.gid:5d} {p.cuid:5d} {p.cgid:5d} "
                    f"{q.stime:10d} {q.rtime:10d} {q.ctime:10d}\n"
                )
        return out
