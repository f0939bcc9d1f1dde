"""Credentials: the user, group and capability identity of a task.

Credentials are immutable; changing an id replaces the task's Credentials
object, as Linux's prepare_creds/commit_creds do, so a reader never sees a
half-updated set.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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

    def has_capability(self, cap: int) -> bool:
        """Reports whether cap is in the effective set."""
        return bool(self.effective >> cap & 1)

    def in_group(self, gid: int) -> bool:
        """Reports whether gid is the fs gid or a supplementary group."""
        return gid == self.fsgid or gid in self.groups

    def with_changes(self, **changes: object) -> Credentials:
        """Returns a copy with the given fields replaced."""
        return replace(self, **changes)  # type: ignore[arg-type]


def root_credentials() -> Credentials:
    """Returns the credentials of the container's initial process: root with
    every capability."""
    return Credentials()
