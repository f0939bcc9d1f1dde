"""tmpfs regular files: contents in pages of the MemoryFile.

A file's contents are a sparse map from page index to the offset of a page
of the sandbox's MemoryFile. A page that is absent is a hole and reads as
zeroes. The file is its own Mappable (pkg/sentry/mm/mappable.py): mmap maps
those very pages, so every mapping, read and write of the file sees the
same bytes, as shmem does. Truncation and hole punching unmap the pages
they drop from every address space that maps them.

A file's pages are released when it has no name left and nothing has it
open or mapped (mappings hold the open file).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import inotify as IN
from pkg.abi.linux import ioctl as I
from pkg.abi.linux import mount as MS
from pkg.abi.linux import stat as S
from pkg.abi.linux.mman import PROT_EXEC, PROT_WRITE, page_round_down, page_round_up
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.tmpfs.inode import Inode
from pkg.sentry.mm.mappable import MappingIdentity, Translation
from pkg.sentry.vfs.file_description import FILE_STATUS_FLAGS, FileDescription
from pkg.sentry.vfs.inode_attrs import now_ns, setstat_events
from pkg.sentry.vfs.llseek import generic_llseek
from pkg.sentry.vfs.permissions import check_file_size_limit, kill_priv_on_write

if TYPE_CHECKING:
    from pkg.sentry.fsimpl.tmpfs.tmpfs import TmpfsFilesystem
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.mm.mappable import MappingSpace
    from pkg.sentry.mm.syscalls import MmapOpts
    from pkg.sentry.vfs.dentry import VirtualDentry
    from pkg.sentry.vfs.lock import FileLocks
    from pkg.sentry.vfs.options import SetStatOptions

PAGE_SIZE = 4096
_PAGE_SHIFT = 12
# The largest file size (MAX_LFS_FILESIZE).
MAX_FILE_SIZE = (1 << 63) - 1
# relatime: atime is updated at least this often.
_RELATIME_NS = 24 * 3600 * 1_000_000_000


class RegularFile(Inode):
    """RegularFile is a tmpfs regular file.

    Attributes:
        data_mu: guards pages and size.
        pages: page index -> MemoryFile offset of the page.
        size: the file size.
        open_count: open files (and, later, mappings) of the inode.
    """

    __slots__ = (
        "_mappings",
        "data_mu",
        "linkable",
        "open_count",
        "pages",
        "seals",
        "size",
    )

    def __init__(self, fs: TmpfsFilesystem, mode: int, uid: int, gid: int) -> None:
        super().__init__(fs, S.S_IFREG | mode & S.S_IALLUGO, uid, gid)
        self.data_mu = threading.Lock()
        self.pages: dict[int, int] = {}
        self.size = 0
        self.open_count = 0
        # memfd seals (F_ADD_SEALS); TODO(#3): memfd_create.
        self.seals = 0
        # An O_TMPFILE file without O_EXCL may get a name by linkat.
        self.linkable = False
        # (space, start, end, offset, writable) of each mapping (data_mu).
        self._mappings: list[tuple[MappingSpace, int, int, int, bool]] = []

    def attr_size(self) -> int:
        return self.size

    def attr_blocks(self) -> int:
        return len(self.pages) * (PAGE_SIZE // 512)

    # Life.

    def inc_open(self) -> None:
        """Counts an open file of the inode."""
        with self.data_mu:
            self.open_count += 1

    def dec_open(self) -> None:
        """Drops an open file; frees the contents if nothing is left."""
        with self.data_mu:
            self.open_count -= 1
            doomed = self.open_count == 0 and self.nlink == 0
        if doomed:
            self._free_all()

    def on_unlinked(self) -> None:
        with self.data_mu:
            doomed = self.open_count == 0
        if doomed:
            self._free_all()

    def release_contents(self) -> None:
        """Frees the file's pages (its filesystem is going away)."""
        self._free_all()

    def _free_all(self) -> None:
        with self.data_mu:
            self._free_pages_locked(list(self.pages))
            self.size = 0

    def _free_pages_locked(self, indexes: list[int]) -> None:
        mf = self.fs.mf
        for i in indexes:
            mf.free(self.pages.pop(i), PAGE_SIZE)
        self.fs.uncharge(len(indexes))

    def _allocate_pages_locked(self, first: int, last: int) -> None:
        """Backs every missing page in [first, last] (page indexes)."""
        # Charged before any per-page work, so that a huge range fails with
        # ENOSPC at once instead of listing billions of pages.
        pages = self.pages
        span = last - first + 1
        if len(pages) < span:
            present = sum(1 for i in pages if first <= i <= last)
        else:
            present = sum(1 for i in range(first, last + 1) if i in pages)
        if present == span:
            return
        self.fs.charge(span - present)
        missing = [i for i in range(first, last + 1) if i not in pages]
        mf = self.fs.mf
        # Consecutive missing pages share one allocation.
        run_start = 0
        for k in range(1, len(missing) + 1):
            if k == len(missing) or missing[k] != missing[k - 1] + 1:
                n = k - run_start
                try:
                    base = mf.allocate(n * PAGE_SIZE)
                except MemoryError:
                    self.fs.uncharge(len(missing) - run_start)
                    raise SyscallError(errno.ENOSPC) from None
                for j in range(n):
                    self.pages[missing[run_start + j]] = base + j * PAGE_SIZE
                run_start = k

    # Data.

    def read_at(self, offset: int, length: int) -> bytes:
        """Returns up to length bytes at offset (fewer at end of file)."""
        with self.data_mu:
            end = min(self.size, offset + length)
            if offset >= end:
                return b""
            out = bytearray(end - offset)
            view = self.fs.mf.view
            pos = offset
            pages = self.pages
            while pos < end:
                index = pos >> _PAGE_SHIFT
                in_page = pos & (PAGE_SIZE - 1)
                n = min(PAGE_SIZE - in_page, end - pos)
                base = pages.get(index)
                if base is not None:
                    # Extend over pages that are contiguous in the file.
                    while pos + n < end:
                        nxt = pages.get(index + 1)
                        if nxt != base + (index + 1 - (pos >> _PAGE_SHIFT)) * PAGE_SIZE:
                            break
                        index += 1
                        n = min(n + PAGE_SIZE, end - pos)
                    src = base + in_page
                    out[pos - offset : pos - offset + n] = view[src : src + n]
                pos += n
        self._touch_atime()
        return bytes(out)

    def _touch_atime(self) -> None:
        now = now_ns()
        # relatime: only when the last access predates the last change or
        # a day has passed.
        if (
            self.atime_ns <= self.mtime_ns
            or self.atime_ns <= self.ctime_ns
            or now - self.atime_ns >= _RELATIME_NS
        ):
            self.atime_ns = now

    def write_at(
        self, t: Task | None, offset: int, data: bytes, append: bool
    ) -> tuple[int, int]:
        """Writes data at offset (at the end of the file if append).

        Returns:
            (bytes written, offset after the write).

        Raises:
            SyscallError: EFBIG past RLIMIT_FSIZE or the largest file size,
                ENOSPC when the filesystem is full, EPERM on a sealed file.
        """
        with self.data_mu:
            if append:
                offset = self.size
            length = len(data)
            if offset + length > MAX_FILE_SIZE:
                if offset >= MAX_FILE_SIZE:
                    raise SyscallError(errno.EFBIG)
                length = MAX_FILE_SIZE - offset
            if t is not None:
                length = check_file_size_limit(t, offset, length)
            if self.seals & (F.F_SEAL_WRITE | F.F_SEAL_FUTURE_WRITE):
                raise SyscallError(errno.EPERM)
            end = offset + length
            if end > self.size and self.seals & F.F_SEAL_GROW:
                raise SyscallError(errno.EPERM)
            if length == 0:
                return 0, offset
            self._allocate_pages_locked(offset >> _PAGE_SHIFT, (end - 1) >> _PAGE_SHIFT)
            view = self.fs.mf.view
            pos = offset
            src = 0
            while pos < end:
                index = pos >> _PAGE_SHIFT
                in_page = pos & (PAGE_SIZE - 1)
                n = min(PAGE_SIZE - in_page, end - pos)
                dst = self.pages[index] + in_page
                view[dst : dst + n] = data[src : src + n]
                pos += n
                src += n
            self.size = max(self.size, end)
        if t is not None and self.mode & (S.S_ISUID | S.S_ISGID):
            self.mode = kill_priv_on_write(t.creds, self.mode)
        self.touch_cmtime()
        return length, end

    def set_size(self, t: Task | None, size: int) -> bool:
        """Truncates or extends the file (truncate(2)); returns whether the
        size changed."""
        if size > MAX_FILE_SIZE:
            raise SyscallError(errno.EFBIG)
        with self.data_mu:
            old = self.size
            if size == old:
                return False
            if size < old and self.seals & F.F_SEAL_SHRINK:
                raise SyscallError(errno.EPERM)
            if size > old and self.seals & F.F_SEAL_GROW:
                raise SyscallError(errno.EPERM)
            if size < old:
                self._zero_tail_locked(size)
                first_gone = (size + PAGE_SIZE - 1) >> _PAGE_SHIFT
                self._free_pages_locked([i for i in self.pages if i >= first_gone])
            self.size = size
        if size < old:
            # Pages past the new end leave every mapping; touching them
            # again faults with SIGBUS.
            self._invalidate(page_round_up(size), page_round_up(old), True)
        return True

    def _zero_tail_locked(self, size: int) -> None:
        """Zeroes the part of size's last page past size."""
        in_page = size & (PAGE_SIZE - 1)
        if not in_page:
            return
        base = self.pages.get(size >> _PAGE_SHIFT)
        if base is not None:
            self.fs.mf.view[base + in_page : base + PAGE_SIZE] = bytes(
                PAGE_SIZE - in_page
            )

    def allocate(self, mode: int, offset: int, length: int) -> None:
        """fallocate(2) on tmpfs: allocation and hole punching.

        Raises:
            SyscallError: EOPNOTSUPP for other modes, EFBIG past the largest
                file size, ENOSPC.
        """
        if mode & ~(F.FALLOC_FL_KEEP_SIZE | F.FALLOC_FL_PUNCH_HOLE):
            raise SyscallError(errno.EOPNOTSUPP)
        end = offset + length
        if end > MAX_FILE_SIZE:
            raise SyscallError(errno.EFBIG)
        punched = False
        with self.data_mu:
            if mode & F.FALLOC_FL_PUNCH_HOLE:
                if self.seals & F.F_SEAL_WRITE:
                    raise SyscallError(errno.EPERM)
                self._punch_hole_locked(offset, end)
                punched = True
            else:
                if end > self.size and not mode & F.FALLOC_FL_KEEP_SIZE:
                    if self.seals & F.F_SEAL_GROW:
                        raise SyscallError(errno.EPERM)
                self._allocate_pages_locked(
                    offset >> _PAGE_SHIFT, (end - 1) >> _PAGE_SHIFT
                )
                if end > self.size and not mode & F.FALLOC_FL_KEEP_SIZE:
                    self.size = end
        if punched:
            self._invalidate(page_round_up(offset), page_round_down(end), False)
        self.touch_cmtime()

    def _punch_hole_locked(self, start: int, end: int) -> None:
        view = self.fs.mf.view
        first_whole = (start + PAGE_SIZE - 1) >> _PAGE_SHIFT
        last_whole = end >> _PAGE_SHIFT  # exclusive
        self._free_pages_locked(
            [i for i in self.pages if first_whole <= i < last_whole]
        )
        # Zero the partial pages at either edge.
        for lo, hi in (
            (start, min(end, first_whole << _PAGE_SHIFT)),
            (max(start, last_whole << _PAGE_SHIFT), end),
        ):
            if lo >= hi:
                continue
            base = self.pages.get(lo >> _PAGE_SHIFT)
            if base is not None:
                a = base + (lo & (PAGE_SIZE - 1))
                view[a : a + hi - lo] = bytes(hi - lo)

    def seek_data_or_hole(self, offset: int, data: bool) -> int:
        """Returns SEEK_DATA's or SEEK_HOLE's answer for offset.

        Raises:
            SyscallError: ENXIO at or past the end of the file, or when no
                data follows offset.
        """
        with self.data_mu:
            if offset >= self.size:
                raise SyscallError(errno.ENXIO)
            index = offset >> _PAGE_SHIFT
            last = (self.size - 1) >> _PAGE_SHIFT
            while index <= last:
                if (index in self.pages) == data:
                    return max(offset, index << _PAGE_SHIFT)
                index += 1
            if data:
                raise SyscallError(errno.ENXIO)
            return self.size

    # Mappable.

    def translate(
        self, start: int, end: int, optional_end: int, write: bool
    ) -> list[Translation]:
        """Returns the pages behind [start, end), up to the end of the file,
        allocating holes (ENOSPC, raised, becomes SIGBUS)."""
        with self.data_mu:
            limit = min(end, page_round_up(self.size))
            if limit <= start:
                return []
            first, last = start >> _PAGE_SHIFT, (limit - 1) >> _PAGE_SHIFT
            self._allocate_pages_locked(first, last)
            out: list[Translation] = []
            for i in range(first, last + 1):
                off = self.pages[i]
                prev = out[-1] if out else None
                if (
                    prev is not None
                    and prev.file_offset + (prev.end - prev.start) == off
                ):
                    out[-1] = Translation(
                        prev.start, (i + 1) << _PAGE_SHIFT, prev.file_offset
                    )
                else:
                    out.append(
                        Translation(i << _PAGE_SHIFT, (i + 1) << _PAGE_SHIFT, off)
                    )
            return out

    def add_mapping(
        self, ms: MappingSpace, start: int, end: int, offset: int, writable: bool
    ) -> None:
        """Records a mapping of the file."""
        with self.data_mu:
            self._mappings.append((ms, start, end, offset, writable))

    def remove_mapping(
        self, ms: MappingSpace, start: int, end: int, offset: int, writable: bool
    ) -> None:
        """Forgets (part of) recorded mappings of [start, end) in ms."""
        with self.data_mu:
            kept = []
            for m in self._mappings:
                mms, ms_start, ms_end, moff, mw = m
                if mms is not ms or ms_end <= start or ms_start >= end:
                    kept.append(m)
                    continue
                if ms_start < start:
                    kept.append((mms, ms_start, start, moff, mw))
                if ms_end > end:
                    kept.append((mms, end, ms_end, moff + (end - ms_start), mw))
            self._mappings = kept

    def writeback(self, start: int, end: int, sync: bool) -> None:
        """Nothing to do: the pages are the file."""

    def punch_hole(self, offset: int, length: int) -> None:
        """madvise(MADV_REMOVE): frees the pages of the range."""
        self.allocate(F.FALLOC_FL_PUNCH_HOLE | F.FALLOC_FL_KEEP_SIZE, offset, length)

    def resident(self, offset: int) -> bool:
        """Reports whether the page at offset exists and is populated."""
        with self.data_mu:
            base = self.pages.get(offset >> _PAGE_SHIFT)
        return base is not None and self.fs.mf.committed_in(base, PAGE_SIZE) > 0

    def writable_mappings(self) -> int:
        """Returns how many shared writable mappings of the file exist."""
        with self.data_mu:
            return sum(1 for m in self._mappings if m[4])

    def _invalidate(self, start: int, end: int, even_private: bool) -> None:
        """Unmaps the file range [start, end) from every mapping of it.
        Called without data_mu: invalidation takes the address space's
        lock, which comes first."""
        if start >= end:
            return
        with self.data_mu:
            targets = []
            for ms, m_start, m_end, moff, _w in self._mappings:
                lo = max(start, moff)
                hi = min(end, moff + (m_end - m_start))
                if lo < hi:
                    targets.append((ms, m_start + (lo - moff), m_start + (hi - moff)))
        for ms, lo, hi in targets:
            ms.invalidate(lo, hi, even_private)


class RegularFileFD(FileDescription):
    """RegularFileFD is an open tmpfs regular file."""

    __slots__ = ("inode",)

    def __init__(self, inode: RegularFile, flags: int, vd: VirtualDentry) -> None:
        super().__init__(flags & FILE_STATUS_FLAGS | F.O_LARGEFILE, vd)
        self.inode = inode
        inode.inc_open()

    def release(self) -> None:
        self.inode.dec_open()

    def read(self, t: Task, length: int) -> bytes:
        with self.pos_mu:
            data = self.inode.read_at(self.offset, length)
            self.offset += len(data)
        self.notify(IN.IN_ACCESS)
        return data

    def pread(self, t: Task, length: int, offset: int) -> bytes:
        data = self.inode.read_at(offset, length)
        self.notify(IN.IN_ACCESS)
        return data

    def write(self, t: Task, data: bytes) -> int:
        with self.pos_mu:
            n, end = self.inode.write_at(
                t, self.offset, data, bool(self.flags & F.O_APPEND)
            )
            self.offset = end
        self.notify(IN.IN_MODIFY)
        return n

    def pwrite(self, t: Task, data: bytes, offset: int) -> int:
        # As on Linux, O_APPEND wins over the offset.
        n, _ = self.inode.write_at(t, offset, data, bool(self.flags & F.O_APPEND))
        self.notify(IN.IN_MODIFY)
        return n

    def seek(self, t: Task, offset: int, whence: int) -> int:
        with self.pos_mu:
            self.offset = generic_llseek(
                self.offset,
                offset,
                whence,
                lambda: self.inode.size,
                self._data_or_hole,
                MAX_FILE_SIZE,
            )
            return self.offset

    def _data_or_hole(self, offset: int, whence: int) -> int:
        if offset < 0:
            raise SyscallError(errno.ENXIO)
        return self.inode.seek_data_or_hole(offset, whence == F.SEEK_DATA)

    def ioctl(self, t: Task, cmd: int, arg: int) -> int:
        if cmd == I.FIONREAD:
            with self.pos_mu:
                n = max(0, self.inode.size - self.offset)
            t.mm.write_i32(arg, min(n, 0x7FFFFFFF))
            return 0
        raise SyscallError(errno.ENOTTY)

    def stat(self, t: Task, mask: int) -> S.Statx:
        return self.inode.statx()

    def setstat(self, t: Task, opts: SetStatOptions) -> None:
        self.inode.setstat(t, t.creds, opts, via_fd=True)
        self.notify(setstat_events(opts))

    def allocate(self, t: Task, mode: int, offset: int, length: int) -> None:
        if t is not None:
            if not mode & F.FALLOC_FL_KEEP_SIZE:
                check_file_size_limit(t, offset + length, 0)
        self.inode.allocate(mode, offset, length)

    def sync(self, t: Task) -> None:
        # The contents are in memory: nothing to write back.
        return

    def file_locks(self) -> FileLocks | None:
        return self.inode.locks

    def configure_mmap(self, t: Task, opts: MmapOpts) -> None:
        configure_file_mmap(self, self.inode, opts)


def configure_file_mmap(f: FileDescription, inode: Inode, opts: MmapOpts) -> None:
    """Makes inode the mapping's Mappable, honouring a noexec mount and the
    file's seals, and names the mapping for /proc/pid/maps."""
    assert f.vd is not None
    if f.vd.mount.flags & MS.MS_NOEXEC:
        if opts.prot & PROT_EXEC:
            raise SyscallError(errno.EPERM)
        opts.max_prot &= ~PROT_EXEC
    seals = getattr(inode, "seals", 0)
    if not opts.private and seals & (F.F_SEAL_WRITE | F.F_SEAL_FUTURE_WRITE):
        if opts.prot & PROT_WRITE:
            raise SyscallError(errno.EPERM)
        opts.max_prot &= ~PROT_WRITE
    opts.mappable = inode
    vfs = f.vd.mount.vfs
    opts.identity = MappingIdentity(
        S.make_dev(inode.fs.dev_major, inode.fs.dev_minor),
        inode.ino,
        vfs.path_for_display(f.vd).decode(errors="replace"),
    )
