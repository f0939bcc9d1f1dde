"""The hidepid= and gid= mount options of proc (fs/proc/root.c and
has_pid_permissions in fs/proc/base.c).

hidepid restricts what a task learns about processes it may not inspect
(ptrace_may_access in read mode), per mount:

- off (0): nothing is hidden;
- noaccess (1): /proc/pid of such a process is listed and can be stat'ed,
  but not entered or read (EPERM);
- invisible (2): it is neither listed nor found (ENOENT);
- ptraceable (4): only processes the task may inspect exist, and gid= does
  not exempt anyone.

gid= names a group whose members are exempt (except with ptraceable). Its
default is 0, so a task whose fs gid or supplementary groups include root's
group sees everything, as on Linux.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.fsimpl.proc.task_files import TaskRef, may_access

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.thread_group import ThreadGroup

HIDEPID_OFF = 0
HIDEPID_NO_ACCESS = 1
HIDEPID_INVISIBLE = 2
HIDEPID_NOT_PTRACEABLE = 4

_NAMES = {
    "off": HIDEPID_OFF,
    "noaccess": HIDEPID_NO_ACCESS,
    "invisible": HIDEPID_INVISIBLE,
    "ptraceable": HIDEPID_NOT_PTRACEABLE,
}
_TEXT = {v: k for k, v in _NAMES.items()}
_GID_MAX = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class PidVisibility:
    """PidVisibility is one proc mount's hidepid and gid options."""

    hide_pid: int = HIDEPID_OFF
    pid_gid: int = 0

    @staticmethod
    def parse(options: dict[str, str]) -> PidVisibility:
        """Returns the visibility the mount options ask for.

        Raises:
            SyscallError: EINVAL for a value proc does not take.
        """
        hide = HIDEPID_OFF
        gid = 0
        if "hidepid" in options:
            value = options["hidepid"]
            if value in _NAMES:
                hide = _NAMES[value]
            elif value.isdigit() and int(value) in _TEXT:
                hide = int(value)
            else:
                raise SyscallError(errno.EINVAL)
        if "gid" in options:
            value = options["gid"]
            if not value.isdigit() or int(value) >= _GID_MAX:
                raise SyscallError(errno.EINVAL)
            gid = int(value)
        return PidVisibility(hide, gid)

    def mount_options(self) -> str:
        """Returns the options mountinfo shows (proc_show_options)."""
        out = []
        if self.pid_gid != 0:
            out.append(f"gid={self.pid_gid}")
        if self.hide_pid != HIDEPID_OFF:
            out.append(f"hidepid={_TEXT[self.hide_pid]}")
        return ",".join(out)

    def allowed(
        self,
        creds: Credentials | None,
        own: ThreadGroup | None,
        ref: TaskRef,
        least: int,
    ) -> bool:
        """Reports whether a task (creds, of process own; None for the
        sentry) may see the process of ref when hiding starts at `least`
        (has_pid_permissions)."""
        if creds is None or own is ref.tg:
            # A process always sees itself, as ptrace_may_access allows.
            return True
        if self.hide_pid == HIDEPID_NOT_PTRACEABLE:
            return may_access(creds, ref)
        if self.hide_pid < least:
            return True
        if creds.in_group(self.pid_gid):
            return True
        return may_access(creds, ref)

    def check_enter(
        self, creds: Credentials, own: ThreadGroup | None, ref: TaskRef
    ) -> None:
        """Checks that a task may enter or read /proc/pid
        (proc_pid_permission).

        Raises:
            SyscallError: ENOENT under invisible, else EPERM.
        """
        if self.allowed(creds, own, ref, HIDEPID_NO_ACCESS):
            return
        if self.hide_pid == HIDEPID_INVISIBLE:
            raise SyscallError(errno.ENOENT)
        raise SyscallError(errno.EPERM)

    def visible(
        self, creds: Credentials | None, own: ThreadGroup | None, ref: TaskRef
    ) -> bool:
        """Reports whether /proc lists and finds the process of ref."""
        if self.hide_pid == HIDEPID_NOT_PTRACEABLE:
            return self.allowed(creds, own, ref, HIDEPID_NO_ACCESS)
        return self.allowed(creds, own, ref, HIDEPID_INVISIBLE)
