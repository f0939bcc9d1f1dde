"""Mount propagation: peer groups, slaves and unbindable mounts
(fs/pnode.c, Documentation/filesystems/sharedsubtree.rst).

A shared mount belongs to a PeerGroup. What is mounted on a dentry of one
member is mounted on the same dentry of every other member whose subtree
holds that dentry, and of every slave of the group; the same goes for
unmounting. A slave mount has a master group whose events it receives; what
is mounted under a slave is not sent back. A slave may be shared as well (a
member of a group of its own), and then passes what it receives on to its
peers and slaves. An unbindable mount is private and cannot be the source of
a bind mount.

Unlike Linux, which links each slave to one master mount, a slave here
points at its master's peer group: every member of a group has the same
master, so the two say the same thing.

Every function here is called with VirtualFilesystem.mu held.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pkg.abi.linux import mount as MS

if TYPE_CHECKING:
    from pkg.sentry.vfs.mount import Mount
    from pkg.sentry.vfs.vfs import VirtualFilesystem


class PeerGroup:
    """PeerGroup is a set of shared mounts that propagate to each other.

    Attributes:
        id: the group id of mountinfo's shared:N and master:N fields.
        members: the shared mounts of the group.
        slaves: the mounts that receive from the group.
    """

    __slots__ = ("id", "members", "slaves")

    def __init__(self, group_id: int) -> None:
        self.id = group_id
        self.members: list[Mount] = []
        self.slaves: list[Mount] = []

    def __repr__(self) -> str:
        return f"PeerGroup(id={self.id}, members={len(self.members)})"

    def master(self) -> PeerGroup | None:
        """Returns the group the members receive from, if any."""
        return self.members[0].master if self.members else None


def join_group(m: Mount, group: PeerGroup) -> None:
    """Makes m a member of group (m must not be in another)."""
    assert m.group is None
    m.group = group
    group.members.append(m)


def set_master(m: Mount, master: PeerGroup | None) -> None:
    """Makes m receive from master (None: from nothing)."""
    if m.master is master:
        return
    if m.master is not None:
        m.master.slaves.remove(m)
    m.master = master
    if master is not None:
        master.slaves.append(m)


def make_shared(vfs: VirtualFilesystem, m: Mount) -> None:
    """Gives m a peer group of its own unless it has one (MS_SHARED)."""
    m.unbindable = False
    if m.group is None:
        join_group(m, PeerGroup(vfs.new_peer_group_id()))


def _leave_group(vfs: VirtualFilesystem, m: Mount) -> None:
    """Takes m out of its peer group. The slaves of a group that loses its
    last member go to the group's master, or become private, as
    do_make_slave hands them on."""
    group = m.group
    if group is None:
        return
    group.members.remove(m)
    m.group = None
    if group.members:
        return
    for s in list(group.slaves):
        set_master(s, m.master)
    vfs.free_peer_group_id(group.id)


def make_slave(vfs: VirtualFilesystem, m: Mount) -> None:
    """Turns m into a slave of its peer group (MS_SLAVE); a mount without
    peers keeps its master (a private one stays private)."""
    group = m.group
    master = group if group is not None and len(group.members) > 1 else m.master
    _leave_group(vfs, m)
    set_master(m, master)
    m.unbindable = False


def make_private(vfs: VirtualFilesystem, m: Mount) -> None:
    """Cuts m off from all propagation (MS_PRIVATE, and umount)."""
    _leave_group(vfs, m)
    set_master(m, None)
    m.unbindable = False


def change_type(vfs: VirtualFilesystem, m: Mount, flags: int) -> None:
    """Applies one of MS_SHARED, MS_SLAVE, MS_PRIVATE or MS_UNBINDABLE to
    m, and to every mount below it with MS_REC (do_change_type)."""
    targets = list(subtree(m)) if flags & MS.MS_REC else [m]
    kind = flags & MS.MS_PROPAGATION
    for t in targets:
        if kind == MS.MS_SHARED:
            make_shared(vfs, t)
        elif kind == MS.MS_SLAVE:
            make_slave(vfs, t)
        elif kind == MS.MS_PRIVATE:
            make_private(vfs, t)
        else:
            make_private(vfs, t)
            t.unbindable = True


def subtree(m: Mount) -> Iterator[Mount]:
    """Yields m and every mount below it, parents first."""
    work = [m]
    while work:
        cur = work.pop()
        yield cur
        work.extend(reversed(cur.children))


def copy_propagation(src: Mount, copy: Mount, slave: bool) -> None:
    """Gives copy, a new copy of src, its place in propagation (clone_mnt).

    Args:
        src: the mount copied.
        copy: the copy, private so far.
        slave: the copy receives from src's group (a copy propagated to a
            slave); otherwise it is a peer of src if src is shared and
            shares src's master (bind mounts, namespace copies, copies
            propagated to peers).
    """
    # A copy is never unbindable: a namespace copy of an unbindable mount
    # is private (as Linux 6.x shows it), other copies skip them.
    if slave:
        set_master(copy, src.group)
        return
    if src.group is not None:
        join_group(copy, src.group)
    set_master(copy, src.master)


def receivers(m: Mount) -> Iterator[tuple[Mount, Mount, bool]]:
    """Yields the mounts an event on m propagates to, with the mount each
    receives it from and whether it receives as a slave, senders before
    receivers (propagation_next).

    Every peer of m receives from m; every slave of a group receives from
    a member of it; a shared slave passes on to its own peers and slaves.
    """
    seen = {id(m)}
    work = [m]
    while work:
        sender = work.pop(0)
        group = sender.group
        if group is None:
            continue
        for p in group.members:
            if id(p) not in seen:
                seen.add(id(p))
                work.append(p)
                yield p, sender, False
        for s in group.slaves:
            if id(s) not in seen:
                seen.add(id(s))
                work.append(s)
                yield s, sender, True
