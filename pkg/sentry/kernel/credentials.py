"""Credentials: the user, group and capability identity of a task.

Credentials are immutable; changing an id replaces the task's Credentials
object, as Linux's prepare_creds/commit_creds do, so a reader never sees a
half-updated set. Credentials belong to one task (thread): a set*id system
call changes the caller only, and libc makes every thread call it.

The rules for changing ids and the capability effects of those changes are
those of kernel/sys.c and security/commoncap.c for a task in the initial
user namespace: CAP_SETUID and CAP_SETGID allow any id; without them an id
may only take a value the task already holds. Leaving uid 0 drops
capabilities (cap_emulate_setxuid) unless SECBIT_KEEP_CAPS is set;
execve recomputes them as for a file without file capabilities
(cap_bprm_creds_from_file).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

# Every capability up to CAP_LAST_CAP (40, CAP_CHECKPOINT_RESTORE).
CAP_LAST_CAP = 40
ALL_CAPS = (1 << (CAP_LAST_CAP + 1)) - 1

CAP_CHOWN = 0
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
CAP_FOWNER = 3
CAP_FSETID = 4
CAP_KILL = 5
CAP_SETGID = 6
CAP_SETUID = 7
CAP_SETPCAP = 8
CAP_LINUX_IMMUTABLE = 9
CAP_NET_BIND_SERVICE = 10
CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
CAP_IPC_LOCK = 14
CAP_SYS_CHROOT = 18
CAP_SYS_PTRACE = 19
CAP_SYS_ADMIN = 21
CAP_SYS_NICE = 23
CAP_SYS_RESOURCE = 24
CAP_SYS_TIME = 25
CAP_MKNOD = 27
CAP_AUDIT_WRITE = 29
CAP_SETFCAP = 31
CAP_MAC_OVERRIDE = 32

# The capabilities that follow the fs uid (CAP_FS_MASK).
CAP_FS_MASK = (
    1 << CAP_CHOWN
    | 1 << CAP_DAC_OVERRIDE
    | 1 << CAP_DAC_READ_SEARCH
    | 1 << CAP_FOWNER
    | 1 << CAP_FSETID
    | 1 << CAP_LINUX_IMMUTABLE
    | 1 << CAP_MAC_OVERRIDE
)

# securebits (include/uapi/linux/securebits.h).
SECURE_NOROOT = 0
SECURE_NOROOT_LOCKED = 1
SECURE_NO_SETUID_FIXUP = 2
SECURE_NO_SETUID_FIXUP_LOCKED = 3
SECURE_KEEP_CAPS = 4
SECURE_KEEP_CAPS_LOCKED = 5
SECURE_NO_CAP_AMBIENT_RAISE = 6
SECURE_NO_CAP_AMBIENT_RAISE_LOCKED = 7
SECBIT_NOROOT = 1 << SECURE_NOROOT
SECBIT_NO_SETUID_FIXUP = 1 << SECURE_NO_SETUID_FIXUP
SECBIT_KEEP_CAPS = 1 << SECURE_KEEP_CAPS
SECBIT_NO_CAP_AMBIENT_RAISE = 1 << SECURE_NO_CAP_AMBIENT_RAISE
# Every defined bit and its lock.
SECURE_ALL_BITS = 0x55
SECURE_ALL_LOCKS = SECURE_ALL_BITS << 1

# PR_SET_DUMPABLE values (SUID_DUMP_*), and fs.suid_dumpable's default: what
# a process becomes when its credentials change.
SUID_DUMP_DISABLE = 0
SUID_DUMP_USER = 1
SUID_DUMPABLE = SUID_DUMP_DISABLE

# (uid_t)-1: "leave unchanged" for setre*id and setres*id, and never valid.
NO_ID = 0xFFFFFFFF
# NGROUPS_MAX.
NGROUPS_MAX = 65536


@dataclass(frozen=True, slots=True)
class Credentials:
    """Credentials of a task (struct cred)."""

    ruid: int = 0
    euid: int = 0
    suid: int = 0
    fsuid: int = 0
    rgid: int = 0
    egid: int = 0
    sgid: int = 0
    fsgid: int = 0
    groups: tuple[int, ...] = ()
    permitted: int = ALL_CAPS
    effective: int = ALL_CAPS
    inheritable: int = 0
    bounding: int = ALL_CAPS
    ambient: int = 0
    keep_caps: bool = False
    no_new_privs: bool = False
    # The other securebits (SECBIT_KEEP_CAPS lives in keep_caps).
    securebits: int = 0

    def has_capability(self, cap: int) -> bool:
        """Reports whether cap is in the effective set."""
        return bool(self.effective >> cap & 1)

    def in_group(self, gid: int) -> bool:
        """Reports whether gid is the fs gid or a supplementary group."""
        return gid == self.fsgid or gid in self.groups

    def with_changes(self, **changes: object) -> Credentials:
        """Returns a copy with the given fields replaced."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def all_securebits(self) -> int:
        """The securebits word as PR_GET_SECUREBITS reports it."""
        return self.securebits | (SECBIT_KEEP_CAPS if self.keep_caps else 0)


def root_credentials() -> Credentials:
    """Returns the credentials of the container's initial process: root with
    every capability."""
    return Credentials()


def _check_id(v: int) -> None:
    if v == NO_ID:
        raise SyscallError(errno.EINVAL)


def _fix_setuid(old: Credentials, new: Credentials) -> Credentials:
    """Applies the capability effects of a uid change (cap_emulate_setxuid
    and the fs uid fixup of cap_task_fix_setuid)."""
    if old.securebits & SECBIT_NO_SETUID_FIXUP:
        return new
    permitted, effective, ambient = new.permitted, new.effective, new.ambient
    old_root = 0 in (old.ruid, old.euid, old.suid)
    new_root = 0 in (new.ruid, new.euid, new.suid)
    if old_root and not new_root:
        if not old.keep_caps:
            permitted = 0
            effective = 0
        ambient = 0
    if old.euid == 0 and new.euid != 0:
        effective = 0
    if old.euid != 0 and new.euid == 0:
        effective = permitted
    if old.fsuid == 0 and new.fsuid != 0:
        effective &= ~CAP_FS_MASK
    if old.fsuid != 0 and new.fsuid == 0:
        effective |= permitted & CAP_FS_MASK
    return new.with_changes(permitted=permitted, effective=effective, ambient=ambient)


def _fix_setfsuid(old: Credentials, new: Credentials) -> Credentials:
    if old.securebits & SECBIT_NO_SETUID_FIXUP:
        return new
    effective = new.effective
    if old.fsuid == 0 and new.fsuid != 0:
        effective &= ~CAP_FS_MASK
    if old.fsuid != 0 and new.fsuid == 0:
        effective |= new.permitted & CAP_FS_MASK
    return new.with_changes(effective=effective)


def setuid(c: Credentials, uid: int) -> Credentials:
    """Returns c after setuid(uid).

    Raises:
        SyscallError: EINVAL for (uid_t)-1, EPERM if not allowed.
    """
    _check_id(uid)
    if c.has_capability(CAP_SETUID):
        new = c.with_changes(ruid=uid, euid=uid, suid=uid, fsuid=uid)
    elif uid in (c.ruid, c.suid):
        new = c.with_changes(euid=uid, fsuid=uid)
    else:
        raise SyscallError(errno.EPERM)
    return _fix_setuid(c, new)


def setreuid(c: Credentials, ruid: int, euid: int) -> Credentials:
    """Returns c after setreuid(ruid, euid); NO_ID leaves an id alone.

    Raises:
        SyscallError: EPERM if not allowed.
    """
    capable = c.has_capability(CAP_SETUID)
    new_ruid, new_euid = c.ruid, c.euid
    if ruid != NO_ID:
        if not capable and ruid not in (c.ruid, c.euid):
            raise SyscallError(errno.EPERM)
        new_ruid = ruid
    if euid != NO_ID:
        if not capable and euid not in (c.ruid, c.euid, c.suid):
            raise SyscallError(errno.EPERM)
        new_euid = euid
    new_suid = c.suid
    if ruid != NO_ID or euid not in (NO_ID, c.ruid):
        new_suid = new_euid
    new = c.with_changes(ruid=new_ruid, euid=new_euid, suid=new_suid, fsuid=new_euid)
    return _fix_setuid(c, new)


def setresuid(c: Credentials, ruid: int, euid: int, suid: int) -> Credentials:
    """Returns c after setresuid(ruid, euid, suid); NO_ID leaves an id alone.

    Raises:
        SyscallError: EPERM if not allowed.
    """
    if not c.has_capability(CAP_SETUID):
        allowed = (c.ruid, c.euid, c.suid)
        for v in (ruid, euid, suid):
            if v != NO_ID and v not in allowed:
                raise SyscallError(errno.EPERM)
    new_euid = c.euid if euid == NO_ID else euid
    new = c.with_changes(
        ruid=c.ruid if ruid == NO_ID else ruid,
        euid=new_euid,
        suid=c.suid if suid == NO_ID else suid,
        fsuid=new_euid,
    )
    return _fix_setuid(c, new)


def setfsuid(c: Credentials, uid: int) -> tuple[Credentials, int]:
    """Returns (c after setfsuid(uid), the old fs uid). An id that is not
    allowed leaves c unchanged; setfsuid never fails."""
    old = c.fsuid
    if uid == NO_ID:
        return c, old
    if uid in (c.ruid, c.euid, c.suid, c.fsuid) or c.has_capability(CAP_SETUID):
        if uid != old:
            c = _fix_setfsuid(c, c.with_changes(fsuid=uid))
    return c, old


def setgid(c: Credentials, gid: int) -> Credentials:
    """Returns c after setgid(gid).

    Raises:
        SyscallError: EINVAL for (gid_t)-1, EPERM if not allowed.
    """
    _check_id(gid)
    if c.has_capability(CAP_SETGID):
        return c.with_changes(rgid=gid, egid=gid, sgid=gid, fsgid=gid)
    if gid in (c.rgid, c.sgid):
        return c.with_changes(egid=gid, fsgid=gid)
    raise SyscallError(errno.EPERM)


def setregid(c: Credentials, rgid: int, egid: int) -> Credentials:
    """Returns c after setregid(rgid, egid).

    Raises:
        SyscallError: EPERM if not allowed.
    """
    capable = c.has_capability(CAP_SETGID)
    new_rgid, new_egid = c.rgid, c.egid
    if rgid != NO_ID:
        if not capable and rgid not in (c.rgid, c.egid):
            raise SyscallError(errno.EPERM)
        new_rgid = rgid
    if egid != NO_ID:
        if not capable and egid not in (c.rgid, c.egid, c.sgid):
            raise SyscallError(errno.EPERM)
        new_egid = egid
    new_sgid = c.sgid
    if rgid != NO_ID or egid not in (NO_ID, c.rgid):
        new_sgid = new_egid
    return c.with_changes(rgid=new_rgid, egid=new_egid, sgid=new_sgid, fsgid=new_egid)


def setresgid(c: Credentials, rgid: int, egid: int, sgid: int) -> Credentials:
    """Returns c after setresgid(rgid, egid, sgid).

    Raises:
        SyscallError: EPERM if not allowed.
    """
    if not c.has_capability(CAP_SETGID):
        allowed = (c.rgid, c.egid, c.sgid)
        for v in (rgid, egid, sgid):
            if v != NO_ID and v not in allowed:
                raise SyscallError(errno.EPERM)
    new_egid = c.egid if egid == NO_ID else egid
    return c.with_changes(
        rgid=c.rgid if rgid == NO_ID else rgid,
        egid=new_egid,
        sgid=c.sgid if sgid == NO_ID else sgid,
        fsgid=new_egid,
    )


def setfsgid(c: Credentials, gid: int) -> tuple[Credentials, int]:
    """Returns (c after setfsgid(gid), the old fs gid); never fails."""
    old = c.fsgid
    if gid == NO_ID:
        return c, old
    if gid in (c.rgid, c.egid, c.sgid, c.fsgid) or c.has_capability(CAP_SETGID):
        c = c.with_changes(fsgid=gid)
    return c, old


def setgroups(c: Credentials, groups: list[int]) -> Credentials:
    """Returns c with a new supplementary group list.

    Raises:
        SyscallError: EPERM without CAP_SETGID, EINVAL for too many groups or
            an invalid gid.
    """
    if len(groups) > NGROUPS_MAX:
        raise SyscallError(errno.EINVAL)
    if not c.has_capability(CAP_SETGID):
        raise SyscallError(errno.EPERM)
    for g in groups:
        _check_id(g)
    return c.with_changes(groups=tuple(sorted(groups)))


def capset(
    c: Credentials, effective: int, permitted: int, inheritable: int
) -> Credentials:
    """Returns c with new capability sets (cap_capset's rules).

    Raises:
        SyscallError: EPERM if a set grows beyond what is allowed.
    """
    if not c.has_capability(CAP_SETPCAP) and inheritable & ~(
        c.inheritable | c.permitted
    ):
        raise SyscallError(errno.EPERM)
    if inheritable & ~(c.inheritable | c.bounding):
        raise SyscallError(errno.EPERM)
    if permitted & ~c.permitted:
        raise SyscallError(errno.EPERM)
    if effective & ~permitted:
        raise SyscallError(errno.EPERM)
    return c.with_changes(
        effective=effective,
        permitted=permitted,
        inheritable=inheritable,
        ambient=c.ambient & permitted & inheritable,
    )


def exec_credentials(c: Credentials, unsafe: bool) -> tuple[Credentials, bool, bool]:
    """Computes the credentials after execve of a file with neither set-id
    bits nor file capabilities (cap_bprm_creds_from_file).

    Root (real or effective uid 0, unless SECBIT_NOROOT) gets its bounding
    and inheritable sets as permitted, and everything permitted as effective
    when its effective uid is 0; anyone else keeps only the ambient set. The
    saved and fs ids follow the effective ones.

    Args:
        c: the credentials of the caller.
        unsafe: the exec may not raise privileges (no_new_privs, or an
            fs_struct shared with another process), as bprm->unsafe.

    Returns:
        (the new credentials, whether the exec is "secure" (AT_SECURE),
        whether privileges grew so that PER_CLEAR_ON_SETID applies).
    """
    permitted = 0
    effective_all = False
    if not c.securebits & SECBIT_NOROOT and 0 in (c.euid, c.ruid):
        permitted = (c.bounding | c.inheritable) & ALL_CAPS
        effective_all = c.euid == 0
    gained = bool(permitted & ~c.permitted)
    euid, egid = c.euid, c.egid
    is_setid = euid != c.ruid or egid != c.rgid
    if (is_setid or gained) and unsafe:
        # Privileges may not grow: fall back to the real ids. As Linux does,
        # is_setid keeps its earlier value for what follows.
        if not c.has_capability(CAP_SETUID) or c.no_new_privs:
            euid, egid = c.ruid, c.rgid
        permitted &= c.permitted
    ambient = 0 if is_setid else c.ambient
    permitted |= ambient
    new = c.with_changes(
        euid=euid,
        egid=egid,
        suid=euid,
        fsuid=euid,
        sgid=egid,
        fsgid=egid,
        permitted=permitted,
        effective=permitted if effective_all else ambient,
        ambient=ambient,
        keep_caps=False,
    )
    secure = is_setid or (
        new.ruid != 0 and (effective_all or bool(permitted & ~ambient))
    )
    return new, secure, gained


def privileges_dropped(old: Credentials, new: Credentials) -> bool:
    """Reports whether a credential change makes the task non-dumpable and
    clears its parent-death signal, as commit_creds does: a changed
    effective or fs id, or a permitted set that is not a subset of the old
    one."""
    return (
        old.euid != new.euid
        or old.egid != new.egid
        or old.fsuid != new.fsuid
        or old.fsgid != new.fsgid
        or bool(new.permitted & ~old.permitted)
    )


def commit_creds(t: Task, new: Credentials) -> None:
    """Installs new credentials on t (commit_creds): a change of effective
    or fs ids, or a permitted set that grows, makes the process
    non-dumpable and clears t's parent-death signal."""
    old = t.creds
    t.creds = new
    if privileges_dropped(old, new):
        t.tg.dumpable = SUID_DUMPABLE
        t.pdeath_signal = 0
