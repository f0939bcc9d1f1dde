"""NUMA memory policies, as set_mempolicy(2) and mbind(2) make them.

The sandbox has one memory node, node 0, as gVisor's does: a policy is
validated and kept exactly as Linux would (mm/mempolicy.c), and reported
back by get_mempolicy(2), but every page comes from the one node whatever
the policy says, so there is nothing to apply.
"""

from __future__ import annotations

from dataclasses import dataclass

from pkg.abi.linux import errno
from pkg.abi.linux import mempolicy as MP
from pkg.errors.syscall_error import SyscallError

# Nodes a nodemask may name (CONFIG_NODES_SHIFT=10 on Debian's kernels);
# set bits above must be zero.
MAX_NUMNODES = 1024
# nr_node_ids: one past the highest possible node.
NR_NODE_IDS = 1
# The nodes with memory the sandbox's tasks may use (cpuset mems_allowed).
MEMS_ALLOWED = 0b1


@dataclass(frozen=True)
class MemPolicy:
    """A policy other than the default one (which is None)."""

    # MPOL_* without flags.
    mode: int
    # MPOL_F_* mode flags.
    flags: int
    # The nodes the policy uses: within MEMS_ALLOWED, never empty except
    # for MPOL_LOCAL.
    nodes: int
    # The nodemask as the caller gave it, which get_mempolicy(2) reports
    # for static and relative policies.
    user_nodes: int

    def reported_mode(self) -> int:
        """Returns the mode and flags get_mempolicy(2) reports."""
        return self.mode | self.flags

    def reported_nodes(self) -> int:
        """Returns the nodemask get_mempolicy(2) reports."""
        if self.flags & (MP.MPOL_F_STATIC_NODES | MP.MPOL_F_RELATIVE_NODES):
            return self.user_nodes
        return self.nodes


def check_mode(mode: int) -> None:
    """Checks a mode and its flags before anything else is read
    (sanitize_mpol_flags).

    Raises:
        SyscallError: EINVAL for an unknown mode or contradictory flags.
    """
    flags = mode & MP.MPOL_MODE_FLAGS
    mode &= ~MP.MPOL_MODE_FLAGS
    if not 0 <= mode < MP.MPOL_MAX:
        raise SyscallError(errno.EINVAL)
    if flags & MP.MPOL_F_STATIC_NODES and flags & MP.MPOL_F_RELATIVE_NODES:
        raise SyscallError(errno.EINVAL)
    if flags & MP.MPOL_F_NUMA_BALANCING and mode not in (
        MP.MPOL_BIND,
        MP.MPOL_PREFERRED_MANY,
    ):
        raise SyscallError(errno.EINVAL)


def new_policy(mode: int, nodes: int) -> MemPolicy | None:
    """Returns the policy mode (with its flags) and nodes ask for, or None
    for MPOL_DEFAULT (mpol_new, mpol_set_nodemask).

    Raises:
        SyscallError: EINVAL for an unknown mode, contradictory flags, or
            nodes the mode does not take or that hold no memory.
    """
    check_mode(mode)
    flags = mode & MP.MPOL_MODE_FLAGS
    mode &= ~MP.MPOL_MODE_FLAGS
    static_or_relative = flags & (MP.MPOL_F_STATIC_NODES | MP.MPOL_F_RELATIVE_NODES)
    if mode == MP.MPOL_DEFAULT:
        if nodes:
            raise SyscallError(errno.EINVAL)
        return None
    if mode == MP.MPOL_PREFERRED and not nodes:
        if static_or_relative:
            raise SyscallError(errno.EINVAL)
        mode = MP.MPOL_LOCAL
    elif mode == MP.MPOL_LOCAL:
        if nodes or static_or_relative:
            raise SyscallError(errno.EINVAL)
    elif not nodes:
        raise SyscallError(errno.EINVAL)
    if mode == MP.MPOL_LOCAL:
        return MemPolicy(mode, flags, 0, 0)
    if flags & MP.MPOL_F_RELATIVE_NODES:
        # Relative node n is the (n mod count)th allowed node: with one
        # node, any nonempty mask folds onto node 0.
        effective = MEMS_ALLOWED
    else:
        effective = nodes & MEMS_ALLOWED
    if not effective:
        raise SyscallError(errno.EINVAL)
    if mode == MP.MPOL_PREFERRED:
        # The first node only.
        effective &= -effective
    return MemPolicy(mode, flags, effective, nodes)
