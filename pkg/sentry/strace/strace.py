"""--strace: one log line when a system call enters and one when it exits.

Lines look like gVisor's:

    [   1:   1] busybox E write(0x1 host:[pipe], 0x7f... "hello\\n", 0x6)
    [   1:   1] busybox X write(0x1 host:[pipe], 0x7f... "hello\\n", 0x6) = 6
        (0x6) (8.2us)

Arguments are decoded by the declarative table in formats.py. Reading
application memory to decode an argument can fail; the line then shows the
raw pointer, and the system call itself is unaffected.
"""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING

from pkg.abi.linux import errno as E
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import mman as M
from pkg.abi.linux import prctl
from pkg.abi.linux import sched as C
from pkg.abi.linux import signal as S
from pkg.abi.linux.limits import NAMES as RLIMIT_NAMES
from pkg.abi.linux.sysno import NAMES as SYSCALL_NAMES
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.strace import formats as K
from pkg.sentry.strace.events import DECODERS as EVENT_DECODERS
from pkg.sentry.strace.sockets import DECODERS as SOCKET_DECODERS

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

log = logging.getLogger("strace")

_MAX_VECTOR = 32


def _flag_names(value: int, names: list[tuple[int, str]]) -> str:
    parts = []
    rest = value
    for bit, name in names:
        if bit and value & bit == bit:
            parts.append(name)
            rest &= ~bit
    if rest or not parts:
        parts.append(hex(rest))
    return "|".join(parts)


_OPEN_FLAGS = [
    (F.O_CREAT, "O_CREAT"),
    (F.O_EXCL, "O_EXCL"),
    (F.O_NOCTTY, "O_NOCTTY"),
    (F.O_TRUNC, "O_TRUNC"),
    (F.O_APPEND, "O_APPEND"),
    (F.O_NONBLOCK, "O_NONBLOCK"),
    (F.O_SYNC, "O_SYNC"),
    (F.O_DSYNC, "O_DSYNC"),
    (F.O_ASYNC, "O_ASYNC"),
    (F.O_DIRECT, "O_DIRECT"),
    (F.O_LARGEFILE, "O_LARGEFILE"),
    (F.O_DIRECTORY, "O_DIRECTORY"),
    (F.O_NOFOLLOW, "O_NOFOLLOW"),
    (F.O_NOATIME, "O_NOATIME"),
    (F.O_CLOEXEC, "O_CLOEXEC"),
    (F.O_PATH, "O_PATH"),
]
_ACCMODE = {F.O_RDONLY: "O_RDONLY", F.O_WRONLY: "O_WRONLY", F.O_RDWR: "O_RDWR"}
_PROT = [
    (M.PROT_READ, "PROT_READ"),
    (M.PROT_WRITE, "PROT_WRITE"),
    (M.PROT_EXEC, "PROT_EXEC"),
]
_MAP = [
    (M.MAP_SHARED, "MAP_SHARED"),
    (M.MAP_PRIVATE, "MAP_PRIVATE"),
    (M.MAP_FIXED, "MAP_FIXED"),
    (M.MAP_ANONYMOUS, "MAP_ANONYMOUS"),
    (M.MAP_32BIT, "MAP_32BIT"),
    (M.MAP_GROWSDOWN, "MAP_GROWSDOWN"),
    (M.MAP_DENYWRITE, "MAP_DENYWRITE"),
    (M.MAP_EXECUTABLE, "MAP_EXECUTABLE"),
    (M.MAP_LOCKED, "MAP_LOCKED"),
    (M.MAP_NORESERVE, "MAP_NORESERVE"),
    (M.MAP_POPULATE, "MAP_POPULATE"),
    (M.MAP_NONBLOCK, "MAP_NONBLOCK"),
    (M.MAP_STACK, "MAP_STACK"),
    (M.MAP_HUGETLB, "MAP_HUGETLB"),
    (M.MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"),
]
_CLONE = [(v, n) for n, v in vars(C).items() if n.startswith("CLONE_")]
_AT = [
    (F.AT_SYMLINK_NOFOLLOW, "AT_SYMLINK_NOFOLLOW"),
    (F.AT_REMOVEDIR, "AT_REMOVEDIR"),
    (F.AT_SYMLINK_FOLLOW, "AT_SYMLINK_FOLLOW"),
    (F.AT_NO_AUTOMOUNT, "AT_NO_AUTOMOUNT"),
    (F.AT_EMPTY_PATH, "AT_EMPTY_PATH"),
]
_ARCH_PRCTL = {v: n for n, v in vars(prctl).items() if n.startswith("ARCH_")}
_CLOCKS = {
    0: "CLOCK_REALTIME",
    1: "CLOCK_MONOTONIC",
    2: "CLOCK_PROCESS_CPUTIME_ID",
    3: "CLOCK_THREAD_CPUTIME_ID",
    4: "CLOCK_MONOTONIC_RAW",
    5: "CLOCK_REALTIME_COARSE",
    6: "CLOCK_MONOTONIC_COARSE",
    7: "CLOCK_BOOTTIME",
}
_FUTEX_OPS = {
    0: "FUTEX_WAIT",
    1: "FUTEX_WAKE",
    3: "FUTEX_REQUEUE",
    4: "FUTEX_CMP_REQUEUE",
    5: "FUTEX_WAKE_OP",
    6: "FUTEX_LOCK_PI",
    7: "FUTEX_UNLOCK_PI",
    8: "FUTEX_TRYLOCK_PI",
    9: "FUTEX_WAIT_BITSET",
    10: "FUTEX_WAKE_BITSET",
}
_WHENCE = {0: "SEEK_SET", 1: "SEEK_CUR", 2: "SEEK_END", 3: "SEEK_DATA", 4: "SEEK_HOLE"}
_HOW = {0: "SIG_BLOCK", 1: "SIG_UNBLOCK", 2: "SIG_SETMASK"}


_ESCAPES = {
    ord("\n"): "\\n",
    ord("\t"): "\\t",
    ord("\r"): "\\r",
    ord('"'): '\\"',
    ord("\\"): "\\\\",
}


def _escape(data: bytes) -> str:
    """Escapes bytes the way strace shows buffers: printable ASCII as is."""
    out = []
    for b in data:
        if b in _ESCAPES:
            out.append(_ESCAPES[b])
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def _s64(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


class Strace:
    """Strace formats system call enter and exit lines."""

    def __init__(self, syscalls: frozenset[str], log_size: int) -> None:
        self.log_size = log_size
        self._only: set[int] | None = None
        if syscalls:
            self._only = {n for n, name in SYSCALL_NAMES.items() if name in syscalls}

    def wants(self, sysno: int) -> bool:
        """Reports whether sysno is traced."""
        return self._only is None or sysno in self._only

    def enter(self, t: Task, sysno: int, args: tuple[int, ...]) -> None:
        """Logs the enter line of a system call."""
        name = SYSCALL_NAMES.get(sysno, f"sys_{sysno}")
        log.info("%s E %s(%s)", self._prefix(t), name, self._args(t, name, args, None))

    def exit(
        self, t: Task, sysno: int, args: tuple[int, ...], ret: int, secs: float
    ) -> None:
        """Logs the exit line of a system call."""
        name = SYSCALL_NAMES.get(sysno, f"sys_{sysno}")
        if -4095 <= ret < 0:
            err = -ret
            result = f"-1 errno={err} ({E.MESSAGES.get(err, E.NAMES.get(err, '?'))})"
        else:
            result = f"{ret} ({ret:#x})"
        log.info(
            "%s X %s(%s) = %s (%.1fus)",
            self._prefix(t),
            name,
            self._args(t, name, args, ret),
            result,
            secs * 1e6,
        )

    def signal(self, t: Task, signo: int, code: int, addr: int, rip: int) -> None:
        """Logs a signal that a fault of t's code raises (a SIGSEGV or SIGBUS
        the program did not ask for is often why it dies)."""
        log.info(
            "%s F %s (code %d) at %#x (rip %#x)",
            self._prefix(t),
            S.NAMES.get(signo, str(signo)),
            code,
            addr,
            rip,
        )

    @staticmethod
    def _prefix(t: Task) -> str:
        name = t.name.decode(errors="backslashreplace")
        return f"[{t.tg.tgid:>4}:{t.tid:>4}] {name}"

    def _args(self, t: Task, name: str, args: tuple[int, ...], ret: int | None) -> str:
        kinds = K.SYSCALL_FORMATS.get(name)
        if kinds is None:
            return ", ".join(hex(a) for a in args)
        out = []
        for i, kind in enumerate(kinds):
            try:
                out.append(self._arg(t, kind, args, i, ret))
            except SyscallError:
                out.append(f"{args[i]:#x} (bad address)")
        return ", ".join(out)

    def _buf(self, data: bytes, total: int) -> str:
        shown = data[: self.log_size]
        return '"' + _escape(shown) + '"' + ("..." if total > len(shown) else "")

    def _arg(
        self, t: Task, kind: str, args: tuple[int, ...], i: int, ret: int | None
    ) -> str:
        v = args[i]
        if kind in (K.HEX, K.PTR):
            return hex(v)
        if kind == K.INT:
            return str(_s64(v))
        if kind == K.UINT:
            return hex(v)
        if kind == K.OCT:
            return oct(v)
        if kind in (K.FD, K.DIRFD):
            fd = _s32(v)
            if kind == K.DIRFD and fd == F.AT_FDCWD:
                return "AT_FDCWD"
            try:
                f = t.fd_table.get(fd)
            except SyscallError:
                return hex(v) if fd >= 0 else str(fd)
            return f"{v:#x} {f.display_name()}"
        if kind in (K.PATH, K.STRING):
            if v == 0:
                return "0x0"
            s = t.mm.copy_in_string(v, 4096)
            return f'{v:#x} "{s.decode(errors="backslashreplace")}"'
        if kind == K.WRITE_BUF:
            n = args[i + 1]
            data = t.mm.copy_in_partial(v, min(n, self.log_size))
            return f"{v:#x} {self._buf(data, n)}"
        if kind == K.READ_BUF_OUT:
            if ret is None or ret <= 0:
                return hex(v)
            data = t.mm.copy_in_partial(v, min(ret, self.log_size))
            return f"{v:#x} {self._buf(data, ret)}"
        if kind in (K.IOVEC, K.READ_IOVEC_OUT):
            if kind == K.READ_IOVEC_OUT and (ret is None or ret <= 0):
                return hex(v)
            count = min(args[i + 1], 8)
            raw = t.mm.copy_in_partial(v, count * 16)
            parts = []
            budget = self.log_size if kind == K.IOVEC else min(ret or 0, self.log_size)
            for j in range(len(raw) // 16):
                base, length = struct.unpack_from("<QQ", raw, j * 16)
                data = t.mm.copy_in_partial(base, min(length, max(budget, 0)))
                budget -= len(data)
                parts.append(
                    f"{{base={base:#x}, len={length}, {self._buf(data, length)}}}"
                )
            return f"{v:#x} [{', '.join(parts)}]"
        if kind == K.OPEN_FLAGS:
            acc = _ACCMODE.get(v & F.O_ACCMODE, hex(v & F.O_ACCMODE))
            rest = v & ~F.O_ACCMODE
            return acc + ("|" + _flag_names(rest, _OPEN_FLAGS) if rest else "")
        if kind == K.MMAP_PROT:
            return _flag_names(v, _PROT) if v else "PROT_NONE"
        if kind == K.MMAP_FLAGS:
            return _flag_names(v, _MAP)
        if kind == K.CLONE_FLAGS:
            sig = v & C.CSIGNAL
            flags = _flag_names(v & ~C.CSIGNAL, _CLONE) if v & ~C.CSIGNAL else ""
            sig_name = S.signal_name(sig) if sig else ""
            return "|".join(p for p in (flags, sig_name) if p) or "0"
        if kind == K.SIGNAL:
            return S.signal_name(_s32(v))
        if kind == K.SIGSET:
            if v == 0:
                return "null"
            mask = t.mm.read_u64(v)
            names = [S.signal_name(n) for n in range(1, 65) if mask >> (n - 1) & 1]
            return f"{v:#x} [{' '.join(names)}]"
        if kind == K.SIGACTION:
            if v == 0:
                return "null"
            handler, flags, restorer, mask = struct.unpack("<QQQQ", t.mm.copy_in(v, 32))
            h = {0: "SIG_DFL", 1: "SIG_IGN"}.get(handler, hex(handler))
            return (
                f"{v:#x} {{Handler: {h}, Flags: {flags:#x}, Restorer: {restorer:#x}, "
                f"Mask: {mask:#x}}}"
            )
        if kind == K.SIGMASK_HOW:
            return _HOW.get(v, hex(v))
        if kind == K.STRING_VECTOR:
            if v == 0:
                return "0x0"
            items = []
            for j in range(_MAX_VECTOR):
                p = t.mm.read_u64(v + 8 * j)
                if p == 0:
                    break
                items.append(
                    '"' + t.mm.copy_in_string(p, 4096).decode(errors="replace") + '"'
                )
            else:
                items.append("...")
            return f"{v:#x} [{', '.join(items)}]"
        if kind in (K.TIMESPEC, K.TIMESPEC_OUT):
            if v == 0 or (kind == K.TIMESPEC_OUT and ret is None):
                return hex(v)
            sec, nsec = struct.unpack("<qq", t.mm.copy_in(v, 16))
            return f"{v:#x} {{sec={sec} nsec={nsec}}}"
        if kind == K.CLOCK_ID:
            return _CLOCKS.get(v, hex(v))
        if kind == K.UTSNAME_OUT:
            if ret is None:
                return hex(v)
            sysname = t.mm.copy_in_string(v, 65).decode(errors="replace")
            return f"{v:#x} {{Sysname: {sysname}, ...}}"
        if kind == K.RLIMIT:
            return RLIMIT_NAMES[v] if v < len(RLIMIT_NAMES) else hex(v)
        if kind == K.ARCH_PRCTL_CODE:
            return _ARCH_PRCTL.get(v, hex(v))
        if kind == K.FUTEX_OP:
            op = v & 0x7F
            name = _FUTEX_OPS.get(op, hex(op))
            if v & 128:
                name += "|FUTEX_PRIVATE_FLAG"
            if v & 256:
                name += "|FUTEX_CLOCK_REALTIME"
            return name
        if kind == K.WHENCE:
            return _WHENCE.get(v, hex(v))
        if kind == K.AT_FLAGS:
            return _flag_names(v, _AT) if v else "0x0"
        if kind == K.IOCTL_CMD:
            return hex(v)
        if kind == K.STAT_OUT:
            return hex(v)
        decoder = EVENT_DECODERS.get(kind) or SOCKET_DECODERS.get(kind)
        if decoder is not None:
            return decoder(t, args, i, ret)
        return hex(v)
