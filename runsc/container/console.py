"""Terminals for containers: a pty pair whose master goes to the container
client through --console-socket.

As runc does, runsc makes a new pseudo-terminal, sends the master to the
Unix socket the client listens on (one message, the terminal's name as
data, the master as SCM_RIGHTS) and gives the replica to the container as
its standard descriptors. The client (conmon, containerd's shim) then relays
the user's terminal to the master and sets its size.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import socket
import struct
import termios
import tty
from collections.abc import Iterator


class ConsoleError(Exception):
    """ConsoleError: the terminal could not be handed to the client."""


def new_pty() -> tuple[int, int]:
    """Returns a new pty pair (master, replica), both close-on-exec, in raw
    mode: the container's own terminal, in the sandbox, does the line
    discipline (runsc/boot/console.py), so none is done here even for what
    the client writes before the sandbox relays it."""
    master, replica = os.openpty()
    tty.setraw(replica)
    return master, replica


@contextlib.contextmanager
def saved_attributes(fd: int) -> Iterator[None]:
    """Puts back the attributes of terminal fd (if it is one) on leaving:
    the sandbox puts the terminal runsc runs on in raw mode while it relays
    it, and could die before it restores them."""
    try:
        old = termios.tcgetattr(fd)
    except termios.error:
        old = None
    try:
        yield
    finally:
        if old is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(fd, termios.TCSADRAIN, old)


def set_size(fd: int, size: dict[str, int] | None) -> None:
    """Sets a terminal's window size from an OCI consoleSize object."""
    if not size:
        return
    rows, cols = int(size.get("height", 0)), int(size.get("width", 0))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def send_master(console_socket: str, master: int) -> None:
    """Sends a pty master to the client listening on console_socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(console_socket)
        name = os.ttyname(master) if os.isatty(master) else "/dev/ptmx"
        sock.sendmsg(
            [name.encode()],
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [master]))],
        )
    except OSError as e:
        raise ConsoleError(f"console socket {console_socket}: {e.strerror or e}") from e
    finally:
        sock.close()
