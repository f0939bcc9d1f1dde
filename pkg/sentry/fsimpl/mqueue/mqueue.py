"""The mqueue filesystem: POSIX message queues as files (ipc/mqueue.c).

Every queue of an IPC namespace is a file in the root directory of one
filesystem instance, the namespace's: mq_open and mq_unlink work on it
through an internal mount, and `mount -t mqueue` (the OCI /dev/mqueue mount)
shows the same instance, as Linux's mq_get_tree does. The root directory is
sticky and world-writable; it holds only queues (no directories, nodes or
links: EPERM). A queue file opened with open(2), or made by open(O_CREAT),
is a queue descriptor like mq_open's; reading it gives the
"QSIZE:... NOTIFY:... SIGNO:... NOTIFY_PID:..." line.

A queue's memory is charged to its creator's real user until it is
unlinked and closed, and creating one fails with EMFILE past the creating
process's RLIMIT_MSGQUEUE, with Linux's accounting (the message area and
one kernel message header and tree node per message slot).

Each IPC namespace has its own instance; mount(2) gets the mounting task's.

TODO(#5): timestamps are the boot time.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import fs as FS
from pkg.abi.linux import ipc as I
from pkg.abi.linux import stat as S
from pkg.abi.linux.capability import CAP_SYS_RESOURCE
from pkg.abi.linux.limits import RLIMIT_MSGQUEUE
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.kernfs.kernfs import (
    DeviceInode,
    DirInode,
    Inode,
    KernfsDentry,
    KernfsFilesystem,
)
from pkg.sentry.fsimpl.mqueue.queue import MessageQueue
from pkg.sentry.kernel.ipc.namespace import ipc_of
from pkg.sentry.kernel.task import current_task
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.file_description import FileDescription
from pkg.sentry.vfs.filesystem import FilesystemType
from pkg.sentry.vfs.permissions import (
    MAY_EXEC,
    MAY_READ,
    MAY_WRITE,
    apply_set_stat_mode_bits,
    check_delete_sticky,
    check_open,
    check_set_stat,
)

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.ipc.namespace import IPCNamespace, MqLimits
    from pkg.sentry.kernel.kernel import Kernel
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.waiter import Entry
    from pkg.sentry.vfs.filesystem import Filesystem, GetFilesystemOptions
    from pkg.sentry.vfs.options import OpenOptions, SetStatOptions
    from pkg.sentry.vfs.resolving_path import ResolvingPath
    from pkg.sentry.vfs.vfs import VirtualFilesystem

# st_size of a queue file (FILENT_SIZE).
_FILENT_SIZE = 80
# What Linux charges per message slot besides the message: sizeof(struct
# msg_msg) and sizeof(struct posix_msg_tree_node) on x86-64.
_MSG_MSG_SIZE = 48
_TREE_NODE_SIZE = 48
# Guards making a namespace's instance.
_instance_mu = threading.Lock()


class QueueInode(DeviceInode):
    """QueueInode is the file of one queue."""

    __slots__ = ("charge", "fs", "gid", "linked", "mq", "opens", "uid")

    def __init__(
        self, fs: MqueueFilesystem, mq: MessageQueue, mode: int, uid: int, gid: int
    ) -> None:
        # (real uid, bytes) charged for RLIMIT_MSGQUEUE.
        self.charge = (0, 0)
        super().__init__(0)
        self.mode = S.S_IFREG | (mode & S.S_IALLUGO)
        self.fs = fs
        self.mq = mq
        self.uid = uid
        self.gid = gid
        self.linked = True
        # Open descriptions; the queue counts against queues_max until it
        # is both unlinked and closed.
        self.opens = 0

    def owner(self) -> tuple[int, int]:
        return self.uid, self.gid

    def size(self) -> int:
        return _FILENT_SIZE

    def valid(self) -> bool:
        return self.linked

    def setstat(self, t: Task | None, creds: Credentials, opts: SetStatOptions) -> None:
        # chmod and chown as on any simple filesystem (simple_setattr);
        # there is no size to change.
        if opts.mask & S.STATX_SIZE:
            raise SyscallError(errno.EINVAL)
        with self.fs.mu:
            check_set_stat(t, creds, opts, self.mode, self.uid, self.gid)
            perm = apply_set_stat_mode_bits(creds, opts, self.mode, self.gid)
            if opts.mask & S.STATX_UID and opts.uid != -1:
                self.uid = opts.uid
            if opts.mask & S.STATX_GID and opts.gid != -1:
                self.gid = opts.gid
            self.mode = S.S_IFREG | perm

    def open(self, t: Task | None, vd: VirtualDentry, flags: int) -> FileDescription:
        return MqueueFD(self, vd, flags)

    def closed(self) -> None:
        """Counts one open description gone."""
        with self.fs.mu:
            self.opens -= 1
            if not self.linked and self.opens == 0:
                self.fs.evict_locked(self)


class MqueueRoot(DirInode):
    """MqueueRoot is the directory of every queue."""

    __slots__ = ("queues",)

    def __init__(self) -> None:
        super().__init__(S.S_ISVTX | 0o777)
        self.queues: dict[bytes, QueueInode] = {}

    def lookup(self, t: Task | None, name: bytes) -> Inode | None:
        return self.queues.get(name)

    def entries(self, t: Task | None) -> list[tuple[bytes, Inode]]:
        return list(self.queues.items())


class MqueueFilesystem(KernfsFilesystem):
    """MqueueFilesystem is the mqueue instance of an IPC namespace.

    Attributes:
        limits: the namespace's /proc/sys/fs/mqueue limits.
        count: the queues that exist (named, or unlinked but open).
        internal: the mount mq_open and mq_unlink resolve names in.
    """

    def __init__(
        self, vfs: VirtualFilesystem, fs_type: FilesystemType, limits: MqLimits
    ) -> None:
        self.top = MqueueRoot()
        super().__init__(vfs, fs_type, self.top, I.MQUEUE_MAGIC)
        self.limits = limits
        self.count = 0
        # Bytes charged per real uid (user_struct's mq_bytes).
        self.user_bytes: dict[int, int] = {}
        self.internal = vfs.new_disconnected_mount(self, self.root)

    def release(self) -> None:
        # The namespace keeps the instance whatever is mounted.
        pass

    # Queues by name (mq_open(3), mq_unlink(3)).

    def evict_locked(self, inode: QueueInode) -> None:
        """Forgets a queue that is unlinked and closed."""
        self.count -= 1
        uid, charged = inode.charge
        left = self.user_bytes.get(uid, 0) - charged
        if left > 0:
            self.user_bytes[uid] = left
        else:
            self.user_bytes.pop(uid, None)

    def _new_queue_locked(
        self,
        creds: Credentials,
        maxmsg: int | None,
        msgsize: int | None,
    ) -> MessageQueue:
        lim = self.limits
        if maxmsg is None or msgsize is None:
            maxmsg = min(lim.msg_default, lim.msg_max)
            msgsize = min(lim.msgsize_default, lim.msgsize_max)
        elif maxmsg <= 0 or msgsize <= 0:
            raise SyscallError(errno.EINVAL)
        elif creds.has_capability(CAP_SYS_RESOURCE):
            if maxmsg > I.HARD_MSGMAX or msgsize > I.HARD_MSGSIZEMAX:
                raise SyscallError(errno.EINVAL)
        elif maxmsg > lim.msg_max or msgsize > lim.msgsize_max:
            raise SyscallError(errno.EINVAL)
        if self.count >= lim.queues_max and not creds.has_capability(CAP_SYS_RESOURCE):
            raise SyscallError(errno.ENOSPC)
        return MessageQueue(maxmsg, msgsize)

    def _create_locked(
        self,
        t: Task | None,
        creds: Credentials,
        name: bytes,
        mode: int,
        attr: tuple[int, int] | None,
    ) -> QueueInode:
        mq = self._new_queue_locked(
            creds, *(attr if attr is not None else (None, None))
        )
        charged = mq.maxmsg * (mq.msgsize + _MSG_MSG_SIZE) + min(
            mq.maxmsg, I.MQ_PRIO_MAX
        ) * (_TREE_NODE_SIZE)
        used = self.user_bytes.get(creds.ruid, 0)
        if t is not None and used + charged > t.tg.limits.soft(RLIMIT_MSGQUEUE):
            raise SyscallError(errno.EMFILE)
        inode = QueueInode(self, mq, mode, creds.fsuid, creds.fsgid)
        inode.charge = (creds.ruid, charged)
        self.user_bytes[creds.ruid] = used + charged
        self.top.queues[name] = inode
        self.count += 1
        return inode

    def _open_inode(
        self, t: Task | None, inode: QueueInode, name: bytes, flags: int
    ) -> MqueueFD:
        d = self._child(t, self.root, name)
        return MqueueFD(inode, VirtualDentry(self.internal, d), flags)

    def mq_open(
        self,
        t: Task,
        name: bytes,
        flags: int,
        mode: int,
        attr: tuple[int, int] | None,
    ) -> MqueueFD:
        """Opens or creates the queue called name (mq_open(2), with the
        leading slash already removed by libc).

        Args:
            mode: the creation mode, umask applied.
            attr: (mq_maxmsg, mq_msgsize) if given.
        """
        _check_name(name)
        creds = t.creds
        with self.mu:
            inode = self.top.queues.get(name)
            if inode is None:
                if not flags & F.O_CREAT:
                    raise SyscallError(errno.ENOENT)
                self.internal.check_begin_write()
                self.top.check_permissions(creds, MAY_WRITE | MAY_EXEC)
                inode = self._create_locked(t, creds, name, mode, attr)
            else:
                if flags & (F.O_CREAT | F.O_EXCL) == F.O_CREAT | F.O_EXCL:
                    raise SyscallError(errno.EEXIST)
                acc = flags & F.O_ACCMODE
                if acc == F.O_ACCMODE:
                    raise SyscallError(errno.EINVAL)
                want = {F.O_RDONLY: MAY_READ, F.O_WRONLY: MAY_WRITE}.get(
                    acc, MAY_READ | MAY_WRITE
                )
                inode.check_permissions(creds, want)
            return self._open_inode(t, inode, name, flags)

    def mq_unlink(self, t: Task, name: bytes) -> None:
        """Removes the queue called name (mq_unlink(2))."""
        _check_name(name)
        with self.mu:
            inode = self.top.queues.get(name)
            if inode is None:
                raise SyscallError(errno.ENOENT)
            self._unlink_locked(t.creds, name, inode)

    def _unlink_locked(
        self, creds: Credentials, name: bytes, inode: QueueInode
    ) -> None:
        top = self.top
        top.check_permissions(creds, MAY_WRITE | MAY_EXEC)
        check_delete_sticky(creds, top.mode, 0, inode.uid)
        del top.queues[name]
        inode.linked = False
        self.root.children.pop(name, None)
        if inode.opens == 0:
            self.evict_locked(inode)

    def unlink_all(self) -> None:
        """Removes every name (the namespace is going); open queues stay
        usable."""
        with self.mu:
            for name, inode in list(self.top.queues.items()):
                del self.top.queues[name]
                inode.linked = False
                self.root.children.pop(name, None)
                if inode.opens == 0:
                    self.evict_locked(inode)

    # Path operations that differ from kernfs's: creating by open(2) and
    # unlink(2).

    def open_at(self, rp: ResolvingPath, opts: OpenOptions) -> FileDescription:
        flags = opts.flags
        if not flags & F.O_CREAT or rp.done():
            return super().open_at(rp, opts)
        parent = self._walk_parent(rp)
        name = rp.component()
        if parent is not self.root or name in (b".", b".."):
            raise SyscallError(errno.EISDIR if name in (b".", b"..") else errno.EACCES)
        if len(name) > FS.NAME_MAX:
            raise SyscallError(errno.ENAMETOOLONG)
        with self.mu:
            inode = self.top.queues.get(name)
            if inode is None:
                rp.mount.check_begin_write()
                self.top.check_permissions(rp.creds, MAY_WRITE | MAY_EXEC)
                inode = self._create_locked(rp.task, rp.creds, name, opts.mode, None)
            else:
                if flags & F.O_EXCL:
                    raise SyscallError(errno.EEXIST)
                check_open(
                    rp.creds,
                    rp.mount,
                    flags,
                    opts.for_exec,
                    inode.mode,
                    inode.uid,
                    inode.gid,
                )
            d = self._child(rp.task, parent, name)
            rp.advance()
            return MqueueFD(inode, VirtualDentry(rp.mount, d), flags)

    def unlink_at(self, rp: ResolvingPath) -> None:
        if rp.done():
            raise SyscallError(errno.EBUSY)
        parent = self._walk_parent(rp)
        name = rp.component()
        rp.mount.check_begin_write()
        with self.mu:
            inode = self.top.queues.get(name) if parent is self.root else None
            if inode is None:
                raise SyscallError(errno.ENOENT)
            self._unlink_locked(rp.creds, name, inode)


def _check_name(name: bytes) -> None:
    """Refuses what lookup_one_len refuses in a queue name."""
    if not name:
        raise SyscallError(errno.ENOENT)
    if name in (b".", b"..") or b"/" in name:
        raise SyscallError(errno.EACCES)
    if len(name) > FS.NAME_MAX:
        raise SyscallError(errno.ENAMETOOLONG)


class MqueueFD(FileDescription):
    """MqueueFD is an open queue: what mq_open returns and what open(2) of
    a queue file gives."""

    __slots__ = ("inode", "mq")

    def __init__(self, inode: QueueInode, vd: VirtualDentry, flags: int) -> None:
        super().__init__(flags & ~(F.O_CREAT | F.O_EXCL | F.O_CLOEXEC), vd)
        self.inode = inode
        self.mq = inode.mq
        with inode.fs.mu:
            inode.opens += 1

    def release(self) -> None:
        self.inode.closed()

    def on_close(self, owner: object) -> None:
        super().on_close(owner)
        # The registering process's close of any descriptor of the queue
        # removes its notification (mqueue_flush_file).
        self.mq.drop_notification_of(owner)

    def read(self, t: Task, length: int) -> bytes:
        with self.pos_mu:
            data = self.mq.info()[self.offset : self.offset + length]
            self.offset += len(data)
            return data

    def pread(self, t: Task, length: int, offset: int) -> bytes:
        return self.mq.info()[offset : offset + length]

    def seek(self, t: Task, offset: int, whence: int) -> int:
        with self.pos_mu:
            if whence == F.SEEK_SET:
                new = offset
            elif whence == F.SEEK_CUR:
                new = self.offset + offset
            elif whence == F.SEEK_END:
                new = _FILENT_SIZE + offset
            else:
                raise SyscallError(errno.EINVAL)
            if new < 0:
                raise SyscallError(errno.EINVAL)
            self.offset = new
            return new

    def stat(self, t: Task, mask: int) -> S.Statx:
        return self.inode.statx(self.inode.fs)

    def setstat(self, t: Task, opts: SetStatOptions) -> None:
        self.inode.setstat(t, t.creds, opts)

    def readiness(self, mask: int) -> int:
        return self.mq.readiness(mask)

    def event_register(self, entry: Entry) -> None:
        self.mq.queue.register(entry)

    def event_unregister(self, entry: Entry) -> None:
        self.mq.queue.unregister(entry)


class MqueueType(FilesystemType):
    """MqueueType gives every mount the namespace's one instance."""

    name = "mqueue"

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def instance(self, vfs: VirtualFilesystem, ipc: IPCNamespace) -> MqueueFilesystem:
        """Returns ipc's instance, made on first use."""
        with _instance_mu:
            fs = ipc.mq_fs
            if fs is None:
                fs = MqueueFilesystem(vfs, self, ipc.mq_limits)
                ipc.mq_fs = fs
            assert isinstance(fs, MqueueFilesystem)
            return fs

    def get_filesystem(
        self, vfs: VirtualFilesystem, creds: Credentials, opts: GetFilesystemOptions
    ) -> tuple[Filesystem, KernfsDentry]:
        # mqueue takes no options Linux would not ignore here; the data
        # string is not parsed.
        # The mounting task's namespace, as mq_get_tree takes current's; the
        # initial one for the sentry's own mounts.
        t = current_task()
        fs = self.instance(vfs, ipc_of(t) if t is not None else self.kernel.ipc)
        return fs, fs.root


def mqueue_filesystem(t: Task) -> MqueueFilesystem:
    """Returns the mqueue instance of t's IPC namespace (for mq_open)."""
    ipc = ipc_of(t)
    fs = ipc.mq_fs
    if fs is None:
        fs = MqueueType(t.kernel).instance(t.kernel.vfs, ipc)
    assert isinstance(fs, MqueueFilesystem)
    return fs
