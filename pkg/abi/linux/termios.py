"""Terminal attributes: struct termios and struct winsize, and their flags
(include/uapi/asm-generic/termbits.h, termbits-common.h,
drivers/tty/tty_io.c, drivers/tty/pty.c)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

# c_cc indices.
VINTR = 0
VQUIT = 1
VERASE = 2
VKILL = 3
VEOF = 4
VTIME = 5
VMIN = 6
VSWTC = 7
VSTART = 8
VSTOP = 9
VSUSP = 10
VEOL = 11
VREPRINT = 12
VDISCARD = 13
VWERASE = 14
VLNEXT = 15
VEOL2 = 16
NCCS = 19

# c_iflag.
IGNBRK = 0o1
BRKINT = 0o2
IGNPAR = 0o4
PARMRK = 0o10
INPCK = 0o20
ISTRIP = 0o40
INLCR = 0o100
IGNCR = 0o200
ICRNL = 0o400
IUCLC = 0o1000
IXON = 0o2000
IXANY = 0o4000
IXOFF = 0o10000
IMAXBEL = 0o20000
IUTF8 = 0o40000

# c_oflag.
OPOST = 0o1
OLCUC = 0o2
ONLCR = 0o4
OCRNL = 0o10
ONOCR = 0o20
ONLRET = 0o40
TABDLY = 0o14000
XTABS = 0o14000

# c_cflag.
B38400 = 0o17
CSIZE = 0o60
CS8 = 0o60
CREAD = 0o200
HUPCL = 0o2000
CLOCAL = 0o4000

# c_lflag.
ISIG = 0o1
ICANON = 0o2
ECHO = 0o10
ECHOE = 0o20
ECHOK = 0o40
ECHONL = 0o100
NOFLSH = 0o200
TOSTOP = 0o400
ECHOCTL = 0o1000
ECHOPRT = 0o2000
ECHOKE = 0o4000
FLUSHO = 0o10000
PENDIN = 0o40000
IEXTEN = 0o100000

# tcflush(3) queue selectors (TCFLSH).
TCIFLUSH = 0
TCOFLUSH = 1
TCIOFLUSH = 2

# The characters of a new terminal (INIT_C_CC): ^C ^\\ DEL ^U ^D, VTIME 0,
# VMIN 1, ^Q ^S ^Z, ^R ^O ^W ^V.
INIT_C_CC = bytes([3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0, 0, 0])

# The size of a canonical line and of the line discipline's read buffer
# (N_TTY_BUF_SIZE).
N_TTY_BUF_SIZE = 4096

_TERMIOS = struct.Struct("<IIIIB19s")
_WINSIZE = struct.Struct("<HHHH")


@dataclass(slots=True)
class Termios:
    """Termios is struct termios, as TCGETS and TCSETS transfer it."""

    iflag: int = 0
    oflag: int = 0
    cflag: int = 0
    lflag: int = 0
    line: int = 0
    cc: bytearray = field(default_factory=lambda: bytearray(INIT_C_CC))

    def pack(self) -> bytes:
        """Returns the 36-byte kernel struct termios."""
        return _TERMIOS.pack(
            self.iflag, self.oflag, self.cflag, self.lflag, self.line, bytes(self.cc)
        )

    @classmethod
    def unpack(cls, data: bytes) -> Termios:
        """Decodes a kernel struct termios."""
        iflag, oflag, cflag, lflag, line, cc = _TERMIOS.unpack(data[: _TERMIOS.size])
        return cls(iflag, oflag, cflag, lflag, line, bytearray(cc))

    def copy(self) -> Termios:
        """Returns an independent copy."""
        return Termios(
            self.iflag,
            self.oflag,
            self.cflag,
            self.lflag,
            self.line,
            bytearray(self.cc),
        )


def replica_termios() -> Termios:
    """The attributes of a new pseudo-terminal replica: tty_std_termios with
    the pty driver's c_cflag (pty_unix98_install)."""
    return Termios(
        iflag=ICRNL | IXON,
        oflag=OPOST | ONLCR,
        cflag=B38400 | CS8 | CREAD,
        lflag=ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
    )


def master_termios() -> Termios:
    """The attributes of a new pseudo-terminal master: raw."""
    return Termios(cflag=B38400 | CS8 | CREAD)


@dataclass(slots=True)
class Winsize:
    """Winsize is struct winsize (TIOCGWINSZ, TIOCSWINSZ)."""

    rows: int = 0
    cols: int = 0
    xpixel: int = 0
    ypixel: int = 0

    def pack(self) -> bytes:
        """Returns the 8-byte struct winsize."""
        return _WINSIZE.pack(self.rows, self.cols, self.xpixel, self.ypixel)

    @classmethod
    def unpack(cls, data: bytes) -> Winsize:
        """Decodes a struct winsize."""
        return cls(*_WINSIZE.unpack(data[: _WINSIZE.size]))
