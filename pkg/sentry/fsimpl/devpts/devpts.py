"""devpts: pseudo-terminals (drivers/tty/pty.c, fs/devpts/inode.c,
drivers/tty/tty_jobctrl.c).

Opening /dev/pts/ptmx makes a Terminal: a LineDiscipline between a master
(the ptmx file) and a replica, /dev/pts/N, which appears in the directory
while the master is open. The replica starts locked (unlockpt(3) clears
it with TIOCSPTLCK); TIOCGPTN tells its number and TIOCGPTPEER opens it.

A replica becomes the controlling terminal of the session whose leader
opens it without O_NOCTTY, or asks with TIOCSCTTY; its foreground process
group (TIOCSPGRP) gets the signals of VINTR, VQUIT, VSUSP and window size
changes. Closing the master hangs the replica up: its reads see end of
file, its writes fail with EIO, and the session's leader gets SIGHUP.

Background processes that read the terminal get SIGTTIN, and those that
change it (or write with TOSTOP) SIGTTOU (pkg/sentry/kernel/tty_jobctrl.py).
The master may ask for packet mode (TIOCPKT): its reads then start with
a status byte, TIOCPKT_DATA before output or the flush, stop and flow
control events alone. TIOCSTI fakes input (through the replica) or output
(through the master): it needs CAP_SYS_ADMIN unless the terminal is the
caller's controlling terminal, and with /proc/sys/dev/tty/legacy_tiocsti
at 0 (Linux 6.2+, CONFIG_LEGACY_TIOCSTI=n) CAP_SYS_ADMIN in any case; it
starts at 1, as on the kernels this project is tested on. TIOCCONS needs
CAP_SYS_ADMIN and a replica (EINVAL through the master) and records the
terminal as the console's, but the sandbox has no console output to send
there (TODO(#5)).

Mount options: mode= (replica permissions, default 0620), ptmxmode=
(default 0666, as container runtimes mount it), gid= (replica group,
default 5, "tty"), newinstance and max= are accepted.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import fs as FS
from pkg.abi.linux import ioctl as I
from pkg.abi.linux import signal as SIG
from pkg.abi.linux import stat as S
from pkg.abi.linux import termios as T
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.devpts.line_discipline import LineDiscipline
from pkg.sentry.fsimpl.kernfs.kernfs import (
    DeviceInode,
    DirInode,
    Inode,
    KernfsFilesystem,
)
from pkg.sentry.kernel.credentials import CAP_SYS_ADMIN
from pkg.sentry.kernel.limits import nofile_limit
from pkg.sentry.kernel.sessions import controlling_tty_locked
from pkg.sentry.kernel.tty_jobctrl import JobControlTTY
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.file_description import FILE_STATUS_FLAGS, FileDescription
from pkg.sentry.vfs.filesystem import FilesystemType, parse_mount_data
from pkg.sentry.vfs.permissions import apply_set_stat_mode_bits, check_set_stat

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.kernel import Kernel
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.kernel.waiter import Entry
    from pkg.sentry.vfs.dentry import Dentry
    from pkg.sentry.vfs.filesystem import Filesystem, GetFilesystemOptions
    from pkg.sentry.vfs.options import SetStatOptions
    from pkg.sentry.vfs.vfs import VirtualFilesystem

TTYAUX_MAJOR = 5
PTMX_MINOR = 2
UNIX98_PTY_REPLICA_MAJOR = 136
# The group of replicas by default: "tty" in Debian's /etc/group.
TTY_GID = 5
# How many terminals may exist at once (/proc/sys/kernel/pty/max).
PTY_MAX = 4096
TIOCGPTLCK = 0x80045439
# Requests that change the terminal, refused to background processes
# (tty_check_change callers).
_CHANGES = frozenset((I.TCSETS, I.TCSETSW, I.TCSETSF, I.TIOCSPGRP, I.TCFLSH, I.TCXONC))


# Guards every kernel's console_tty (TIOCCONS).
_console_mu = threading.Lock()


class Terminal(JobControlTTY):
    """Terminal is one pseudo-terminal pair.

    Attributes:
        index: N of /dev/pts/N.
        ld: the line discipline.
        locked: the replica may not be opened (TIOCSPTLCK).
        uid, gid, mode: the replica node's owner and permissions.
    """

    def __init__(
        self, kernel: Kernel, index: int, uid: int, gid: int, mode: int
    ) -> None:
        super().__init__(kernel)
        self.index = index
        self.ld = LineDiscipline(self.signal_foreground)
        self.locked = True
        self.uid = uid
        self.gid = gid
        self.mode = mode
        self._mu = threading.Lock()
        self.masters = 0
        self.replicas = 0

    # Opening and closing ends.

    def open_replica(self, t: Task | None, vd: VirtualDentry, flags: int) -> ReplicaFD:
        """Opens the replica (tty_open): EIO while locked or after the
        master has gone. A session leader without a controlling terminal
        that opens it without O_NOCTTY acquires it."""
        with self._mu:
            if self.locked or self.ld.master_gone:
                raise SyscallError(errno.EIO)
            self.replicas += 1
        self.ld.hang_up(master=False, gone=False)
        f = ReplicaFD(self, flags, vd)
        if t is not None and not flags & F.O_NOCTTY:
            self.acquire_on_open(t)
        return f

    def rdev(self) -> tuple[int, int]:
        """Returns the replica's device number (/proc/pid/stat's tty_nr)."""
        return UNIX98_PTY_REPLICA_MAJOR, self.index

    def open_tty(self, t: Task | None, vd: VirtualDentry, flags: int) -> ReplicaFD:
        """Opens the terminal for /dev/tty (the controlling terminal)."""
        return self.open_replica(t, vd, flags | F.O_NOCTTY)

    def close_replica(self) -> None:
        with self._mu:
            self.replicas -= 1
            last = self.replicas == 0
        if last:
            self.ld.hang_up(master=False)

    def close_master(self) -> None:
        """Hangs the replica up (pty_close): its readers see end of file,
        its writers EIO, and the controlling session's leader gets SIGHUP
        and SIGCONT."""
        with self._mu:
            self.masters -= 1
            if self.masters:
                return
        self.ld.hang_up(master=True)
        self.hang_up_session()

    # ioctls both ends share.

    def common_ioctl(self, t: Task, cmd: int, arg: int, replica: bool) -> int | None:
        """Handles the terminal requests either end accepts; None if cmd is
        not one of them. Through the replica, requests that change the
        terminal stop background processes (SIGTTOU)."""
        ld = self.ld
        if replica and cmd in _CHANGES:
            self.check_background(t, SIG.SIGTTOU)
        if cmd == I.TCGETS:
            t.copy_out(arg, ld.get_termios().pack())
            return 0
        if cmd in (I.TCSETS, I.TCSETSW, I.TCSETSF):
            new = T.Termios.unpack(t.copy_in(arg, I.TERMIOS_SIZE))
            ld.set_termios(new, flush_input=cmd == I.TCSETSF)
            return 0
        if cmd == I.TIOCGWINSZ:
            t.copy_out(arg, ld.winsize.pack())
            return 0
        if cmd == I.TIOCSWINSZ:
            ld.set_winsize(T.Winsize.unpack(t.copy_in(arg, I.WINSIZE_SIZE)))
            return 0
        if cmd == I.TIOCSCTTY:
            self.set_controlling(t, arg == 1)
            return 0
        if cmd == I.TIOCNOTTY:
            self.release_controlling(t)
            return 0
        if cmd == I.TIOCGPGRP:
            t.mm.write_i32(arg, self.foreground_pgid(t))
            return 0
        if cmd == I.TIOCSPGRP:
            self.set_foreground(t, t.mm.read_i32(arg))
            return 0
        if cmd == I.TIOCGSID:
            t.mm.write_i32(arg, self.session_id(t))
            return 0
        if cmd in (I.TCSBRK, I.TCXONC):
            # Breaks and flow control requests: nothing to send on a pty.
            return 0
        if cmd == I.TCFLSH:
            ld.flush(arg, replica)
            return 0
        if cmd == I.TIOCSTI:
            self._simulate(t, arg, replica)
            return 0
        return None

    def _simulate(self, t: Task, arg: int, replica: bool) -> None:
        """TIOCSTI: fakes a character of input through the replica, or of
        output through the master (tiocsti).

        Raises:
            SyscallError: EIO with legacy_tiocsti off and EPERM for a
                terminal that is not the caller's controlling one, both
                unless the caller has CAP_SYS_ADMIN; EFAULT.
        """
        admin = t.creds.has_capability(CAP_SYS_ADMIN)
        if not admin and not self.kernel.tty_legacy_tiocsti:
            raise SyscallError(errno.EIO)
        if not admin:
            with self.kernel.tasks.mu:
                # A master is nobody's controlling terminal.
                if not replica or controlling_tty_locked(t.tg) is not self:
                    raise SyscallError(errno.EPERM)
        c = t.copy_in(arg, 1)[0]
        if replica:
            self.ld.simulate_input(c)
        else:
            self.ld.simulate_output(c)

    def set_console(self, t: Task, writable: bool) -> None:
        """TIOCCONS: makes this terminal the console's (tioccons).

        Raises:
            SyscallError: EPERM without CAP_SYS_ADMIN, EBADF for a file not
                open for writing, EBUSY while another live terminal is the
                console's.
        """
        if not t.creds.has_capability(CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM)
        if not writable:
            raise SyscallError(errno.EBADF)
        # TODO(#5): the sandbox has no /dev/console and no kernel messages,
        # so nothing is ever written to the redirected console.
        kernel = self.kernel
        with _console_mu:
            held = kernel.console_tty
            current = held() if held is not None else None
            if (
                isinstance(current, Terminal)
                and current is not self
                and not current.ld.master_gone
            ):
                raise SyscallError(errno.EBUSY)
            kernel.console_tty = weakref.ref(self)


class MasterFD(FileDescription):
    """MasterFD is an open /dev/ptmx: the terminal's master end."""

    __slots__ = ("fs", "term")

    def __init__(
        self, fs: DevptsFilesystem, term: Terminal, flags: int, vd: VirtualDentry
    ) -> None:
        super().__init__(flags & FILE_STATUS_FLAGS | F.O_LARGEFILE, vd)
        self.fs = fs
        self.term = term

    def release(self) -> None:
        self.term.close_master()
        self.fs.forget(self.term)

    def read(self, t: Task, length: int) -> bytes:
        return self.term.ld.master_read(t, length, self.nonblocking)

    def write(self, t: Task, data: bytes) -> int:
        return self.term.ld.master_write(t, data, self.nonblocking)

    def readiness(self, mask: int) -> int:
        return self.term.ld.master_readiness(mask)

    def event_register(self, entry: Entry) -> None:
        self.term.ld.master_queue.register(entry)

    def event_unregister(self, entry: Entry) -> None:
        self.term.ld.master_queue.unregister(entry)

    def ioctl(self, t: Task, cmd: int, arg: int) -> int:
        term = self.term
        if cmd == I.TIOCGPTN:
            t.mm.write_u32(arg, term.index)
            return 0
        if cmd == I.TIOCSPTLCK:
            term.locked = t.mm.read_i32(arg) != 0
            return 0
        if cmd == TIOCGPTLCK:
            t.mm.write_i32(arg, int(term.locked))
            return 0
        if cmd == I.TIOCGPTPEER:
            return self._open_peer(t, arg)
        if cmd in (I.FIONREAD, I.TIOCOUTQ):
            # The master reads the output queue.
            n = term.ld.output_queued_bytes() if cmd == I.FIONREAD else 0
            t.mm.write_i32(arg, n)
            return 0
        if cmd == I.TIOCPKT:
            term.ld.set_packet(t.mm.read_i32(arg) != 0)
            return 0
        if cmd == I.TIOCGPKT:
            t.mm.write_i32(arg, int(term.ld.packet))
            return 0
        if cmd == I.TIOCCONS:
            # Only a replica can be the console (tty_ioctl).
            raise SyscallError(errno.EINVAL)
        result = term.common_ioctl(t, cmd, arg, replica=False)
        if result is None:
            raise SyscallError(errno.ENOTTY)
        return result

    def _open_peer(self, t: Task, flags: int) -> int:
        """TIOCGPTPEER: opens the replica as by path, returning its
        descriptor."""
        if flags & ~(F.O_ACCMODE | F.O_NOCTTY | F.O_NONBLOCK | F.O_CLOEXEC):
            raise SyscallError(errno.EINVAL)
        vd = self.fs.replica_vd(self.term, self.vd)
        f = self.term.open_replica(t, vd, flags)
        try:
            return t.fd_table.new_fd(f, bool(flags & F.O_CLOEXEC), 0, nofile_limit(t))
        except SyscallError:
            f.dec_ref()
            raise


class ReplicaFD(FileDescription):
    """ReplicaFD is an open /dev/pts/N (or /dev/tty naming it)."""

    __slots__ = ("term",)

    def __init__(self, term: Terminal, flags: int, vd: VirtualDentry) -> None:
        super().__init__(flags & FILE_STATUS_FLAGS | F.O_LARGEFILE, vd)
        self.term = term

    def release(self) -> None:
        self.term.close_replica()

    def read(self, t: Task, length: int) -> bytes:
        # A hung-up terminal reads as end of file (hung_up_tty_read).
        ld = self.term.ld
        if ld.master_gone:
            return b""
        self.term.check_background(t, SIG.SIGTTIN)
        try:
            return ld.replica_read(t, length, self.nonblocking)
        except SyscallError as e:
            if e.errno == errno.EIO and ld.master_gone:
                return b""
            raise

    def write(self, t: Task, data: bytes) -> int:
        ld = self.term.ld
        if ld.master_gone:
            raise SyscallError(errno.EIO)
        if ld.termios.lflag & T.TOSTOP:
            self.term.check_background(t, SIG.SIGTTOU)
        return ld.replica_write(t, data, self.nonblocking)

    def readiness(self, mask: int) -> int:
        return self.term.ld.replica_readiness(mask)

    def event_register(self, entry: Entry) -> None:
        self.term.ld.replica_queue.register(entry)

    def event_unregister(self, entry: Entry) -> None:
        self.term.ld.replica_queue.unregister(entry)

    def ioctl(self, t: Task, cmd: int, arg: int) -> int:
        ld = self.term.ld
        if cmd == I.FIONREAD:
            t.mm.write_i32(arg, ld.input_readable_bytes())
            return 0
        if cmd == I.TIOCOUTQ:
            t.mm.write_i32(arg, ld.output_queued_bytes())
            return 0
        if cmd == I.TIOCGPTN:
            # Only the master answers it.
            raise SyscallError(errno.ENOTTY)
        if cmd in (I.TIOCPKT, I.TIOCGPKT):
            # A master's requests (ptm_unix98_ops).
            raise SyscallError(errno.ENOTTY)
        if cmd == I.TIOCCONS:
            self.term.set_console(t, self.writable)
            return 0
        result = self.term.common_ioctl(t, cmd, arg, replica=True)
        if result is None:
            raise SyscallError(errno.ENOTTY)
        return result


class PtmxInode(DeviceInode):
    """PtmxInode is /dev/pts/ptmx: opening it makes a new terminal."""

    __slots__ = ("fs",)

    def __init__(self, fs: DevptsFilesystem, mode: int) -> None:
        super().__init__(S.S_IFCHR | mode, ino=2)
        self.fs = fs

    def rdev(self) -> tuple[int, int]:
        return TTYAUX_MAJOR, PTMX_MINOR

    def open(self, t: Task | None, vd: VirtualDentry, flags: int) -> FileDescription:
        creds = t.creds if t is not None else None
        term = self.fs.new_terminal(
            creds.fsuid if creds is not None else 0,
            creds.fsgid if creds is not None else 0,
        )
        return MasterFD(self.fs, term, flags, vd)


class ReplicaInode(DeviceInode):
    """ReplicaInode is /dev/pts/N."""

    __slots__ = ("term",)

    def __init__(self, term: Terminal) -> None:
        super().__init__(S.S_IFCHR | term.mode, ino=term.index + 3)
        self.term = term

    def owner(self) -> tuple[int, int]:
        return self.term.uid, self.term.gid

    def rdev(self) -> tuple[int, int]:
        return UNIX98_PTY_REPLICA_MAJOR, self.term.index

    def valid(self) -> bool:
        return not self.term.ld.master_gone

    def setstat(self, t: Task | None, creds: Credentials, opts: SetStatOptions) -> None:
        # grantpt(3) chmods and chowns the replica: the usual rules apply
        # (the timestamps are not kept).
        mask = opts.mask
        term = self.term
        check_set_stat(t, creds, opts, self.mode, term.uid, term.gid, False)
        if mask & (S.STATX_MODE | S.STATX_UID | S.STATX_GID):
            perm = apply_set_stat_mode_bits(creds, opts, self.mode, term.gid)
            self.mode = S.S_IFCHR | perm
            term.mode = perm
        if mask & S.STATX_UID and opts.uid != -1:
            term.uid = opts.uid
        if mask & S.STATX_GID and opts.gid != -1:
            term.gid = opts.gid

    def open(self, t: Task | None, vd: VirtualDentry, flags: int) -> FileDescription:
        return self.term.open_replica(t, vd, flags)


class DevptsRoot(DirInode):
    """DevptsRoot is /dev/pts: ptmx and one node per terminal."""

    __slots__ = ("fs", "ptmx")

    def __init__(self, fs: DevptsFilesystem, ptmx_mode: int) -> None:
        super().__init__(0o755, ino=1)
        self.fs = fs
        self.ptmx = PtmxInode(fs, ptmx_mode)

    def entries(self, t: Task | None) -> list[tuple[bytes, Inode]]:
        out: list[tuple[bytes, Inode]] = [(b"ptmx", self.ptmx)]
        out += [(str(i).encode(), n) for i, n in self.fs.replica_nodes()]
        return out

    def lookup(self, t: Task | None, name: bytes) -> Inode | None:
        if name == b"ptmx":
            return self.ptmx
        if not name.isdigit() or (len(name) > 1 and name.startswith(b"0")):
            return None
        return self.fs.replica_node(int(name))


class DevptsFilesystem(KernfsFilesystem):
    """DevptsFilesystem is one devpts instance and its terminals."""

    def __init__(
        self,
        vfs: VirtualFilesystem,
        fs_type: DevptsType,
        mode: int,
        ptmx_mode: int,
        gid: int,
    ) -> None:
        self._terms: dict[int, tuple[Terminal, ReplicaInode]] = {}
        self._terms_mu = threading.Lock()
        self.kernel = fs_type.kernel
        self.mode = mode
        self.ptmx_mode = ptmx_mode
        self.gid = gid
        super().__init__(
            vfs,
            fs_type,
            DevptsRoot(self, ptmx_mode),
            FS.DEVPTS_SUPER_MAGIC,
            boot_time_ns=time.time_ns(),
        )

    def new_terminal(self, uid: int, gid: int) -> Terminal:
        """Makes a terminal with the lowest free number.

        Raises:
            SyscallError: ENOSPC past PTY_MAX terminals.
        """
        with self._terms_mu:
            index = 0
            while index in self._terms:
                index += 1
            if index >= PTY_MAX:
                raise SyscallError(errno.ENOSPC)
            term = Terminal(
                self.kernel, index, uid, self.gid if self.gid >= 0 else gid, self.mode
            )
            term.masters = 1
            self._terms[index] = (term, ReplicaInode(term))
            return term

    def forget(self, term: Terminal) -> None:
        """Removes a terminal whose master has gone."""
        with self._terms_mu:
            entry = self._terms.get(term.index)
            if entry is not None and entry[0] is term:
                del self._terms[term.index]

    def replica_nodes(self) -> list[tuple[int, ReplicaInode]]:
        with self._terms_mu:
            return sorted((i, n) for i, (_t, n) in self._terms.items())

    def replica_node(self, index: int) -> ReplicaInode | None:
        with self._terms_mu:
            entry = self._terms.get(index)
        return entry[1] if entry is not None else None

    def replica_vd(
        self, term: Terminal, ptmx_vd: VirtualDentry | None
    ) -> VirtualDentry:
        """Returns the VirtualDentry of term's replica node, next to the
        ptmx that made it (for TIOCGPTPEER)."""
        assert ptmx_vd is not None
        d = self._child(None, self.root, str(term.index).encode())
        return VirtualDentry(ptmx_vd.mount, d)

    def mount_options(self) -> str:
        gid = f",gid={self.gid}" if self.gid >= 0 else ""
        return f"mode={self.mode:03o}{gid},ptmxmode={self.ptmx_mode:03o}"


class DevptsType(FilesystemType):
    """DevptsType makes devpts instances (each a new instance, as
    newinstance asks)."""

    name = "devpts"

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def get_filesystem(
        self, vfs: VirtualFilesystem, creds: Credentials, opts: GetFilesystemOptions
    ) -> tuple[Filesystem, Dentry]:
        mode, ptmx_mode, gid = 0o620, 0o666, TTY_GID
        for key, value in parse_mount_data(opts.data).items():
            try:
                if key == "mode":
                    mode = int(value, 8) & 0o7777
                elif key == "ptmxmode":
                    ptmx_mode = int(value, 8) & 0o7777
                elif key == "gid":
                    gid = int(value)
                elif key in ("uid", "max"):
                    int(value)
                elif key != "newinstance":
                    raise SyscallError(errno.EINVAL)
            except ValueError:
                raise SyscallError(errno.EINVAL) from None
        fs = DevptsFilesystem(vfs, self, mode, ptmx_mode, gid)
        return fs, fs.root
