"""System V shared memory segments (shmget(2), shmat(2), shmdt(2),
shmctl(2)).

A segment's pages are a memory-only FileCache in the MemoryFile, like a
shared anonymous mapping's. shmat maps that cache MAP_SHARED; every vma of
an attachment holds a reference on the Segment (vma splits and fork take
their own, exit and exec drop them with the address space), so the number of
references is shm_nattch as Linux counts it (one per vma). A segment removed
with IPC_RMID while attached is only marked SHM_DEST and loses its key; the
last detach destroys it (ipc/shm.c shm_close).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import ipc as I
from pkg.abi.linux.capability import CAP_IPC_LOCK
from pkg.abi.linux.limits import RLIMIT_MEMLOCK
from pkg.abi.linux.mman import PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.ipc.registry import IPCObject, Perm, Registry, now
from pkg.sentry.mm.file_cache import FileCache
from pkg.sentry.mm.mappable import MappingIdentity
from pkg.sentry.mm.memory_manager import MmapOpts

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.pgalloc.memory_file import MemoryFile

# The device /proc/[pid]/maps shows for segments (the internal shm mount).
_SHM_DEV = 1


class Segment(IPCObject):
    """Segment is one shared memory segment (struct shmid_kernel).

    It is also what the vmas of its attachments hold (mm RefCounted).
    """

    __slots__ = (
        "atime",
        "cache",
        "cpid",
        "ctime",
        "dtime",
        "identity",
        "lpid",
        "nattch",
        "shm",
        "size",
    )

    def __init__(self, shm: ShmManager, perm: Perm, size: int, pid: int) -> None:
        super().__init__(perm)
        self.shm = shm
        self.size = size
        self.cache = FileCache(shm.mf, None, size=size)
        self.atime = 0
        self.dtime = 0
        self.ctime = now()
        self.cpid = pid
        self.lpid = 0
        self.nattch = 0
        self.identity: MappingIdentity | None = None

    @property
    def pages(self) -> int:
        """The number of pages the segment counts against shmall."""
        return (self.size + PAGE_SIZE - 1) // PAGE_SIZE

    def inc_ref(self) -> None:
        """Counts one more vma attached (shm_open)."""
        with self.shm.ids.mu:
            self.nattch += 1

    def dec_ref(self) -> None:
        """Counts one vma detached; the last detach of a removed segment
        destroys it (shm_close)."""
        with self.shm.ids.mu:
            self.nattch -= 1
            self.dtime = now()
            if self.nattch or not self.perm.mode & I.SHM_DEST:
                return
            self.shm.destroy_locked(self)
        self.cache.dec_ref()

    def stat(self) -> bytes:
        """Returns the struct shmid64_ds. Preconditions: ids.mu is held."""
        return self.perm.pack() + I.SHMID64_DS_TAIL.pack(
            self.size, self.atime, self.dtime, self.ctime,
            self.cpid, self.lpid, self.nattch, 0, 0,
        )  # fmt: skip


class ShmManager:
    """ShmManager holds the segments of one IPC namespace.

    Attributes:
        ids: the segments.
        total_pages: the pages of all segments (shm_tot).
        shmmax, shmall, shmmni: the limits of /proc/sys/kernel/shm*.
    """

    def __init__(self, mf: MemoryFile) -> None:
        self.mf = mf
        self.ids: Registry[Segment] = Registry(I.SHMMNI)
        self.total_pages = 0
        self.shmmax = I.SHMMAX
        self.shmall = I.SHMALL
        self.shmmni = I.SHMMNI

    def destroy_locked(self, seg: Segment) -> None:
        """Removes seg from the namespace; the caller drops its cache
        reference after releasing ids.mu."""
        self.ids.remove_locked(seg)
        self.total_pages -= seg.pages

    def remove_all(self) -> None:
        """Removes every segment as IPC_RMID does (the namespace is
        going)."""
        freed = []
        with self.ids.mu:
            for seg in list(self.ids.objects_locked()):
                if seg.nattch:
                    seg.perm.mode |= I.SHM_DEST
                    self.ids.unlink_key_locked(seg)
                else:
                    self.destroy_locked(seg)
                    freed.append(seg)
        for seg in freed:
            seg.cache.dec_ref()

    def get(self, creds: Credentials, pid: int, key: int, size: int, flags: int) -> int:
        """shmget(2): returns the id of the segment for key."""

        def create(perm: Perm) -> Segment:
            if flags & I.SHM_HUGETLB:
                # TODO(#3): no huge pages; as a kernel without a hugetlbfs
                # pool.
                raise SyscallError(errno.ENOMEM)
            if size < I.SHMMIN or size > self.shmmax:
                raise SyscallError(errno.EINVAL)
            seg = Segment(self, perm, size, pid)
            if self.total_pages + seg.pages < self.total_pages or (
                self.total_pages + seg.pages > self.shmall
            ):
                raise SyscallError(errno.ENOSPC)
            self.total_pages += seg.pages
            return seg

        def more_checks(seg: Segment) -> None:
            if seg.size < size:
                raise SyscallError(errno.EINVAL)

        with self.ids.mu:
            self.ids.limit = self.shmmni
            seg = self.ids.get_locked(creds, key, flags, create, more_checks)
            if seg.identity is None:
                seg.identity = MappingIdentity(
                    _SHM_DEV, seg.perm.id, f"/SYSV{key & 0xFFFFFFFF:08x} (deleted)"
                )
            return seg.perm.id

    def attach(self, t: Task, ident: int, addr: int, flags: int) -> int:
        """shmat(2): maps the segment and returns its address."""
        if addr:
            if addr & (I.SHMLBA - 1):
                if not flags & I.SHM_RND:
                    raise SyscallError(errno.EINVAL)
                addr &= ~(I.SHMLBA - 1)
                if addr == 0 and flags & I.SHM_REMAP:
                    raise SyscallError(errno.EINVAL)
        elif flags & I.SHM_REMAP:
            raise SyscallError(errno.EINVAL)
        if flags & I.SHM_RDONLY:
            prot, acc = PROT_READ, I.S_IRUGO
        else:
            prot, acc = PROT_READ | PROT_WRITE, I.S_IRUGO | I.S_IWUGO
        if flags & I.SHM_EXEC:
            prot |= PROT_EXEC
            acc |= I.S_IXUGO

        # The temporary attach keeps a segment removed meanwhile alive
        # until it is mapped, as do_shmat's shm_nattch++ does.
        with self.ids.mu:
            seg = self.ids.find_locked(ident)
            if not seg.perm.check(t.creds, acc):
                raise SyscallError(errno.EACCES)
            seg.nattch += 1
            seg.atime = now()
            seg.lpid = t.pid
        try:
            opts = MmapOpts(
                length=seg.size,
                prot=prot,
                max_prot=prot,
                addr=addr,
                fixed=bool(addr) and bool(flags & I.SHM_REMAP),
                noreplace=bool(addr) and not flags & I.SHM_REMAP,
                private=False,
                mappable=seg.cache,
                file=seg,
                identity=seg.identity,
            )
            try:
                return t.mm.mmap(opts, t.tg.limits)
            except SyscallError as e:
                if e.errno == errno.EEXIST:
                    # An attach over an existing mapping without SHM_REMAP.
                    raise SyscallError(errno.EINVAL) from None
                raise
        finally:
            seg.dec_ref()

    def detach(self, t: Task, addr: int) -> None:
        """shmdt(2)."""
        if addr & (I.SHMLBA - 1):
            raise SyscallError(errno.EINVAL)

        def segment_size(f: object) -> int:
            if isinstance(f, Segment) and f.shm is self:
                with self.ids.mu:
                    f.lpid = t.pid
                return f.size
            return -1

        if not t.mm.detach_segment(addr, segment_size):
            raise SyscallError(errno.EINVAL)

    def ctl(self, t: Task, ident: int, cmd: int, buf: int) -> int:
        """shmctl(2)."""
        if cmd == I.IPC_INFO:
            info = I.SHMINFO64.pack(
                self.shmmax, I.SHMMIN, self.shmmni, I.SHMSEG, self.shmall,
                0, 0, 0, 0,
            )  # fmt: skip
            t.copy_out(buf, info)
            with self.ids.mu:
                return max(self.ids.max_index_locked(), 0)
        if cmd == I.SHM_INFO:
            with self.ids.mu:
                rss = sum(s.cache.cached_bytes for s in self.ids.objects_locked())
                info = I.SHM_INFO_STRUCT.pack(
                    len(self.ids), self.total_pages, rss // PAGE_SIZE, 0, 0, 0
                )
                ret = max(self.ids.max_index_locked(), 0)
            t.copy_out(buf, info)
            return ret
        if cmd in (I.IPC_STAT, I.SHM_STAT, I.SHM_STAT_ANY):
            with self.ids.mu:
                if cmd == I.IPC_STAT:
                    seg = self.ids.find_locked(ident)
                    ret = 0
                else:
                    seg = self.ids.find_index_locked(ident)
                    ret = seg.perm.id
                if cmd != I.SHM_STAT_ANY and not seg.perm.check(t.creds, I.S_IRUGO):
                    raise SyscallError(errno.EACCES)
                data = seg.stat()
            t.copy_out(buf, data)
            return ret
        if cmd == I.IPC_SET:
            raw = t.copy_in(buf, I.IPC64_PERM.size)
            _, uid, gid, _, _, mode, *_ = I.IPC64_PERM.unpack(raw)
            with self.ids.mu:
                seg = self.ids.find_locked(ident)
                seg.perm.check_owner(t.creds)
                seg.perm.set(uid, gid, mode)
                seg.ctime = now()
            return 0
        if cmd == I.IPC_RMID:
            with self.ids.mu:
                seg = self.ids.find_locked(ident)
                seg.perm.check_owner(t.creds)
                if seg.nattch:
                    seg.perm.mode |= I.SHM_DEST
                    self.ids.unlink_key_locked(seg)
                    return 0
                self.destroy_locked(seg)
            seg.cache.dec_ref()
            return 0
        if cmd in (I.SHM_LOCK, I.SHM_UNLOCK):
            with self.ids.mu:
                seg = self.ids.find_locked(ident)
                if not t.creds.has_capability(CAP_IPC_LOCK):
                    if t.creds.euid not in (seg.perm.uid, seg.perm.cuid):
                        raise SyscallError(errno.EPERM)
                    if cmd == I.SHM_LOCK and not t.tg.limits.soft(RLIMIT_MEMLOCK):
                        raise SyscallError(errno.EPERM)
                # Segment pages are never swapped out here, so the lock is
                # only the flag IPC_STAT reports.
                if cmd == I.SHM_LOCK:
                    seg.perm.mode |= I.SHM_LOCKED
                else:
                    seg.perm.mode &= ~I.SHM_LOCKED
            return 0
        raise SyscallError(errno.EINVAL)

    def proc_lines(self) -> list[str]:
        """Returns /proc/sysvipc/shm."""
        out = [
            "       key      shmid perms                  size  cpid  lpid "
            "nattch   uid   gid  cuid  cgid      atime      dtime      ctime"
            "                   rss                  swap\n"
        ]
        with self.ids.mu:
            for s in self.ids.objects_locked():
                p = s.perm
                out.append(
                    f"{p.key:10d} {p.id:10d}  {p.mode & 0o7777:4o} {s.size:21d} "
                    f"{s.cpid:5d} {s.lpid:5d}  {s.nattch:5d} {p.uid:5d} {p.gid:5d} "
                    f"{p.cuid:5d} {p.cgid:5d} {s.atime:10d} {s.dtime:10d} "
                    f"{s.ctime:10d} {s.cache.cached_bytes:21d} {0:21d}\n"
                )
        return out
