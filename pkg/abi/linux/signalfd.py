"""signalfd(2) flags and struct signalfd_siginfo
(include/uapi/linux/signalfd.h, fs/signalfd.c, kernel/signal.c)."""

from __future__ import annotations

import struct

from pkg.abi.linux import signal as S

SFD_CLOEXEC = 0o2000000
SFD_NONBLOCK = 0o4000

SIGNALFD_SIGINFO_SIZE = 128

# struct signalfd_siginfo: signo, errno, code, pid, uid, fd, tid, band,
# overrun, trapno, status, int, ptr, utime, stime, addr, addr_lsb, pad,
# syscall, call_addr, arch, and padding to 128 bytes.
_SIGNALFD_SIGINFO = struct.Struct("<IiiIIiIIIIiiQQQQHHiQI28x")

# The union of siginfo_t starts at offset 16 on 64-bit.
_HEAD = struct.Struct("<iii")
_U32_PAIR = struct.Struct("<iI")
_I64 = struct.Struct("<q")
_U64 = struct.Struct("<Q")
_I32 = struct.Struct("<i")
_I16 = struct.Struct("<h")
_U32 = struct.Struct("<I")

# siginfo layouts (enum siginfo_layout).
SIL_KILL = 0
SIL_TIMER = 1
SIL_POLL = 2
SIL_FAULT = 3
SIL_FAULT_MCEERR = 4
SIL_CHLD = 5
SIL_RT = 6
SIL_SYS = 7

# For si_code in (SI_USER, SI_KERNEL): the highest code each signal defines
# (NSIGILL...) and the layout such codes have.
_FILTER = {
    S.SIGILL: (11, SIL_FAULT),
    S.SIGFPE: (15, SIL_FAULT),
    S.SIGSEGV: (10, SIL_FAULT),
    S.SIGBUS: (5, SIL_FAULT),
    S.SIGTRAP: (6, SIL_FAULT),
    S.SIGCHLD: (6, SIL_CHLD),
    S.SIGIO: (6, SIL_POLL),
    S.SIGSYS: (2, SIL_SYS),
}
_NSIGPOLL = 6
_BUS_MCEERR_AR = 4
_BUS_MCEERR_AO = 5


def siginfo_layout(signo: int, code: int) -> int:
    """Returns which union member of siginfo_t a signal uses, as
    kernel/signal.c's siginfo_layout does."""
    if S.SI_USER < code < S.SI_KERNEL:
        limit_layout = _FILTER.get(signo)
        if limit_layout is not None and code <= limit_layout[0]:
            layout = limit_layout[1]
            if signo == S.SIGBUS and _BUS_MCEERR_AR <= code <= _BUS_MCEERR_AO:
                return SIL_FAULT_MCEERR
            # BNDERR, PKUERR and PERF_EVENT faults read as plain faults.
            return layout
        if code <= _NSIGPOLL:
            return SIL_POLL
        return SIL_KILL
    if code == S.SI_TIMER:
        return SIL_TIMER
    if code == S.SI_SIGIO:
        return SIL_POLL
    if code < 0:
        return SIL_RT
    return SIL_KILL


def signalfd_siginfo(siginfo: bytes) -> bytes:
    """Converts a 128-byte siginfo_t into the struct signalfd_siginfo that
    read(2) of a signalfd returns (signalfd_copyinfo)."""
    signo, err, code = _HEAD.unpack_from(siginfo, 0)
    pid = uid = fd = tid = band = overrun = status = sival_int = 0
    ptr = utime = stime = addr = addr_lsb = syscall = call_addr = arch = 0
    layout = siginfo_layout(signo, code)
    if layout in (SIL_KILL, SIL_RT, SIL_CHLD):
        pid, uid = _U32_PAIR.unpack_from(siginfo, 16)
        pid &= 0xFFFFFFFF
        if layout == SIL_RT:
            (ptr,) = _U64.unpack_from(siginfo, 24)
            (sival_int,) = _I32.unpack_from(siginfo, 24)
        elif layout == SIL_CHLD:
            (status,) = _I32.unpack_from(siginfo, 24)
            (utime,) = _U64.unpack_from(siginfo, 32)
            (stime,) = _U64.unpack_from(siginfo, 40)
    elif layout == SIL_TIMER:
        tid, overrun = _U32_PAIR.unpack_from(siginfo, 16)
        tid &= 0xFFFFFFFF
        overrun &= 0xFFFFFFFF
        (ptr,) = _U64.unpack_from(siginfo, 24)
        (sival_int,) = _I32.unpack_from(siginfo, 24)
    elif layout == SIL_POLL:
        (band_long,) = _I64.unpack_from(siginfo, 16)
        band = band_long & 0xFFFFFFFF
        (fd,) = _I32.unpack_from(siginfo, 24)
    elif layout in (SIL_FAULT, SIL_FAULT_MCEERR):
        (addr,) = _U64.unpack_from(siginfo, 16)
        if layout == SIL_FAULT_MCEERR:
            (lsb,) = _I16.unpack_from(siginfo, 24)
            addr_lsb = lsb & 0xFFFF
    elif layout == SIL_SYS:
        (call_addr,) = _U64.unpack_from(siginfo, 16)
        (syscall,) = _I32.unpack_from(siginfo, 24)
        (arch,) = _U32.unpack_from(siginfo, 28)
    return _SIGNALFD_SIGINFO.pack(
        signo & 0xFFFFFFFF,
        err,
        code,
        pid,
        uid,
        fd,
        tid,
        band,
        overrun,
        0,
        status,
        sival_int,
        ptr & 0xFFFF_FFFF_FFFF_FFFF,
        utime & 0xFFFF_FFFF_FFFF_FFFF,
        stime & 0xFFFF_FFFF_FFFF_FFFF,
        addr,
        addr_lsb,
        0,
        syscall,
        call_addr,
        arch,
    )
