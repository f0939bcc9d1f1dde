"""The terminal of a container process whose OCI spec says
process.terminal: a pseudo-terminal of the container's own devpts, relayed
to the host terminal runsc was given (pkg/sentry/fsimpl/devpts/host_relay.py).

runc's init opens /dev/ptmx inside the container, makes the replica its
standard descriptors and, after setsid(), its controlling terminal
(TIOCSCTTY), and sends the master to the client. Here the sentry does the
same within the sandbox: the process sees /dev/pts/N (N = 0 for the first)
on descriptors 0, 1 and 2, leads a session whose controlling terminal it
is, and is in its foreground; the client keeps the host pty runsc made,
which the relay joins to the sentry terminal's master.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.devpts.devpts import MasterFD, ReplicaFD
from pkg.sentry.fsimpl.devpts.host_relay import HostRelay
from pkg.sentry.kernel.credentials import root_credentials
from pkg.sentry.kernel.task import Task
from pkg.sentry.vfs.dentry import VirtualDentry
from pkg.sentry.vfs.options import OpenOptions
from pkg.sentry.vfs.resolving_path import PathOperation
from pkg.sentry.vfs.vfs import VirtualFilesystem

log = logging.getLogger(__name__)

# Where the container's devpts is (runsc/boot/mounts.py mounts it there if
# the spec does not).
PTMX_PATH = b"/dev/pts/ptmx"


@dataclass(slots=True)
class Console:
    """Console is a new sentry terminal for one process, before the relay
    starts.

    Attributes:
        master: the terminal's master (one reference).
        replica: the replica, open read-write (one reference).
    """

    master: MasterFD
    replica: ReplicaFD

    def close(self) -> None:
        """Drops both ends (the process could not be made)."""
        self.replica.dec_ref()
        self.master.dec_ref()


def open_console(vfs: VirtualFilesystem, root: VirtualDentry, uid: int) -> Console:
    """Makes a terminal in the devpts at /dev/pts of the container whose
    root is root; its replica is owned by uid (as runc chowns the process's
    standard descriptors to its user), in devpts's group.

    Raises:
        SyscallError: there is no devpts at /dev/pts, or no terminal left.
    """
    pop = PathOperation(root=root, start=root, path=PTMX_PATH, follow=True)
    master = vfs.open_at(
        None,
        root_credentials(),
        pop,
        OpenOptions(flags=F.O_RDWR | F.O_NOCTTY),
    )
    if not isinstance(master, MasterFD):
        master.dec_ref()
        raise SyscallError(errno.ENODEV)
    term = master.term
    term.locked = False
    try:
        replica = term.open_replica(
            None, master.fs.replica_vd(term, master.vd), F.O_RDWR | F.O_NOCTTY
        )
    except SyscallError:
        master.dec_ref()
        raise
    term.uid = uid
    return Console(master, replica)


def attach(console: Console, t: Task) -> None:
    """Makes the terminal the controlling terminal of t's session (t leads
    it, as every process runsc starts does), with t's group in the
    foreground: setsid() and TIOCSCTTY in runc's init."""
    term = console.master.term
    with t.kernel.tasks.mu:
        pg = t.tg.process_group
        if pg is not None and pg.session.tty is None:
            term.attach_locked(pg.session, pg)


def start_relay(
    console: Console, stdio: list[int], name: str, foreground: bool
) -> HostRelay:
    """Joins the terminal to the host: input from stdio[0], output to
    stdio[1] (duplicated; the caller keeps its descriptors). The relay
    owns the master from now on. foreground: stdio is runsc's own, not a
    pty made for the container (HostRelay)."""
    in_fd = os.dup(stdio[0])
    out_fd = os.dup(stdio[1] if len(stdio) > 1 else stdio[0])
    relay = HostRelay(console.master, in_fd, out_fd, name, foreground)
    relay.start()
    log.info(
        "boot: process %s has /dev/pts/%d, relayed to the host terminal",
        name,
        console.master.term.index,
    )
    return relay
