"""NUMA memory policies: set_mempolicy(2), get_mempolicy(2), mbind(2).

The sandbox has one memory node (pkg/sentry/mm/mempolicy.py): policies are
checked and kept as Linux keeps them (mm/mempolicy.c) and every page comes
from node 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import mempolicy as MP
from pkg.abi.linux import sysno as N
from pkg.abi.linux.mman import PAGE_SIZE, page_round_up
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import CAP_SYS_NICE
from pkg.sentry.mm.mempolicy import (
    MAX_NUMNODES,
    MEMS_ALLOWED,
    NR_NODE_IDS,
    MemPolicy,
    check_mode,
    new_policy,
)
from pkg.sentry.syscalls.syscall import Args, partial, s32

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

_GET_FLAGS = MP.MPOL_F_NODE | MP.MPOL_F_ADDR | MP.MPOL_F_MEMS_ALLOWED


def _read_nodes(t: Task, addr: int, maxnode: int) -> int:
    """Reads the nodemask of maxnode - 1 bits at addr (get_nodes).

    Raises:
        SyscallError: EINVAL for more than a page of bits or a set bit past
            MAX_NUMNODES; EFAULT for a bad address.
    """
    maxnode -= 1
    if maxnode <= 0 or not addr:
        return 0
    if maxnode > PAGE_SIZE * 8:
        raise SyscallError(errno.EINVAL)
    nlongs = (maxnode + 63) // 64
    mask = int.from_bytes(t.copy_in(addr, nlongs * 8), "little")
    mask &= (1 << maxnode) - 1
    if mask >> MAX_NUMNODES:
        raise SyscallError(errno.EINVAL)
    return mask


def _write_nodes(t: Task, addr: int, maxnode: int, nodes: int) -> None:
    """Writes nodes as a mask of maxnode - 1 bits (copy_nodes_to_user):
    the longs past those that hold a possible node are zeroed."""
    size = (maxnode - 1 + 63) // 64 * 8
    ours = (NR_NODE_IDS + 63) // 64 * 8
    if size > ours:
        if size > PAGE_SIZE:
            raise SyscallError(errno.EINVAL)
        t.copy_out(addr + ours, bytes(size - ours))
        size = ours
    t.copy_out(addr, nodes.to_bytes(ours, "little")[:size])


def sys_set_mempolicy(t: Task, args: Args) -> int:
    """set_mempolicy(2)."""
    mode, addr, maxnode = s32(args[0]), args[1], args[2]
    check_mode(mode)
    nodes = _read_nodes(t, addr, maxnode)
    t.mempolicy = new_policy(mode, nodes)
    return 0


def sys_get_mempolicy(t: Task, args: Args) -> int:
    """get_mempolicy(2)."""
    mode_addr, mask_addr, maxnode, addr, flags = (
        args[0],
        args[1],
        args[2],
        args[3],
        args[4],
    )
    if mask_addr and maxnode < NR_NODE_IDS:
        raise SyscallError(errno.EINVAL)
    if flags & ~_GET_FLAGS:
        raise SyscallError(errno.EINVAL)
    if flags & MP.MPOL_F_MEMS_ALLOWED:
        if flags & (MP.MPOL_F_NODE | MP.MPOL_F_ADDR):
            raise SyscallError(errno.EINVAL)
        mode, nodes = 0, MEMS_ALLOWED
    else:
        policy: MemPolicy | None
        if flags & MP.MPOL_F_ADDR:
            policy = t.mm.mempolicy_at(addr) or t.mempolicy
        elif addr:
            raise SyscallError(errno.EINVAL)
        else:
            policy = t.mempolicy
        if flags & MP.MPOL_F_NODE:
            if flags & MP.MPOL_F_ADDR:
                # The node of the page at addr, which Linux faults in.
                t.copy_in(addr, 1)
                mode = 0
            elif (
                policy is t.mempolicy
                and policy is not None
                and (policy.mode == MP.MPOL_INTERLEAVE)
            ):
                # The node the next interleaved page comes from.
                mode = (policy.nodes & -policy.nodes).bit_length() - 1
            else:
                raise SyscallError(errno.EINVAL)
        else:
            mode = MP.MPOL_DEFAULT if policy is None else policy.reported_mode()
        nodes = 0 if policy is None else policy.reported_nodes()
    if mode_addr:
        t.mm.write_u32(mode_addr, mode & 0xFFFFFFFF)
    if mask_addr:
        _write_nodes(t, mask_addr, maxnode, nodes)
    return 0


def sys_mbind(t: Task, args: Args) -> int:
    """mbind(2): the range's pages already are on the one node, so
    MPOL_MF_MOVE and MPOL_MF_STRICT have nothing to move or report."""
    start, length, mode = args[0], args[1], s32(args[2])
    addr, maxnode, flags = args[3], args[4], args[5]
    check_mode(mode)
    nodes = _read_nodes(t, addr, maxnode)
    if flags & ~MP.MPOL_MF_VALID:
        raise SyscallError(errno.EINVAL)
    if flags & MP.MPOL_MF_MOVE_ALL and not t.creds.has_capability(CAP_SYS_NICE):
        raise SyscallError(errno.EPERM)
    if start & (PAGE_SIZE - 1):
        raise SyscallError(errno.EINVAL)
    # PAGE_ALIGN wraps as Linux's does: a length within a page of 2^64
    # is 0.
    end = start + (page_round_up(length) & (1 << 64) - 1)
    if end >= 1 << 64:
        raise SyscallError(errno.EINVAL)
    if end == start:
        return 0
    policy = new_policy(mode, nodes)
    t.mm.set_mempolicy_range(start, end, policy)
    return 0


ENTRIES = [
    partial(
        N.SYS_set_mempolicy,
        "set_mempolicy",
        sys_set_mempolicy,
        "one memory node: policies are kept and reported, all memory is node 0's",
    ),
    partial(
        N.SYS_get_mempolicy,
        "get_mempolicy",
        sys_get_mempolicy,
        "one memory node: every page is on node 0",
    ),
    partial(
        N.SYS_mbind,
        "mbind",
        sys_mbind,
        "one memory node: range policies are kept and reported, nothing moves",
    ),
]
