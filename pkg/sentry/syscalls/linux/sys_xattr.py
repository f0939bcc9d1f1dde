"""Extended attributes: setxattr(2), getxattr(2), listxattr(2),
removexattr(2), with their l* and f* forms."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.abi.linux import capability as CAP
from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import fs as FS
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.syscalls.syscall import Args, full, s32
from pkg.sentry.vfs.options import SetXattrOptions
from pkg.sentry.vfs.task_path import copy_in_path, get_file, path_operation

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.resolving_path import PathOperation


def _copy_in_name(t: Task, addr: int) -> bytes:
    """Reads an attribute name (import_xattr_name): 1 to XATTR_NAME_MAX
    bytes."""
    try:
        name = t.copy_in_string(addr, FS.XATTR_NAME_MAX + 1)
    except SyscallError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise SyscallError(errno.ERANGE) from None
        raise
    if not name:
        raise SyscallError(errno.ERANGE)
    return name


def _pop(t: Task, addr: int, follow: bool) -> PathOperation:
    return path_operation(t, F.AT_FDCWD, copy_in_path(t, addr), follow)


def _set_opts(
    t: Task, name_addr: int, value_addr: int, size: int, flags: int
) -> SetXattrOptions:
    if flags & ~(FS.XATTR_CREATE | FS.XATTR_REPLACE):
        raise SyscallError(errno.EINVAL)
    name = _copy_in_name(t, name_addr)
    if size > FS.XATTR_SIZE_MAX:
        raise SyscallError(errno.E2BIG)
    value = t.copy_in(value_addr, size) if size else b""
    if value and name == _XATTR_NAME_CAPS:
        _check_file_caps(value)
    return SetXattrOptions(name, value, flags)


# The file capabilities' attribute (XATTR_NAME_CAPS).
_XATTR_NAME_CAPS = FS.XATTR_SECURITY_PREFIX + b"capability"


def _check_file_caps(value: bytes) -> None:
    """Refuses a security.capability value whose header is not a revision
    2 or 3 one of the right size, as cap_convert_nscap does. Unlike Linux,
    which checks it after resolving the path, this comes first (a missing
    file with a bad value gives EINVAL, not ENOENT). With one user
    namespace, a valid value is stored as given (a v3 root id is the
    namespace's own)."""
    magic = int.from_bytes(value[:4], "little") if len(value) >= 4 else 0
    revision = magic & CAP.VFS_CAP_REVISION_MASK
    if not (
        (len(value) == CAP.XATTR_CAPS_SZ_2 and revision == CAP.VFS_CAP_REVISION_2)
        or (len(value) == CAP.XATTR_CAPS_SZ_3 and revision == CAP.VFS_CAP_REVISION_3)
    ):
        raise SyscallError(errno.EINVAL)


def _setxattr(t: Task, args: Args, follow: bool) -> int:
    pop = _pop(t, args[0], follow)
    opts = _set_opts(t, args[1], args[2], args[3], s32(args[4]))
    t.kernel.vfs.setxattr_at(t, t.creds, pop, opts)
    return 0


def sys_setxattr(t: Task, args: Args) -> int:
    """setxattr(2)."""
    return _setxattr(t, args, True)


def sys_lsetxattr(t: Task, args: Args) -> int:
    """lsetxattr(2)."""
    return _setxattr(t, args, False)


def sys_fsetxattr(t: Task, args: Args) -> int:
    """fsetxattr(2)."""
    f = get_file(t, s32(args[0]))
    f.setxattr(t, _set_opts(t, args[1], args[2], args[3], s32(args[4])))
    return 0


def _copy_out_value(t: Task, addr: int, size: int, value: bytes) -> int:
    if size == 0:
        return len(value)
    if len(value) > size:
        raise SyscallError(errno.ERANGE)
    t.copy_out(addr, value)
    return len(value)


def _getxattr(t: Task, args: Args, follow: bool) -> int:
    pop = _pop(t, args[0], follow)
    name = _copy_in_name(t, args[1])
    value = t.kernel.vfs.getxattr_at(t, t.creds, pop, name)
    return _copy_out_value(t, args[2], args[3], value)


def sys_getxattr(t: Task, args: Args) -> int:
    """getxattr(2)."""
    return _getxattr(t, args, True)


def sys_lgetxattr(t: Task, args: Args) -> int:
    """lgetxattr(2)."""
    return _getxattr(t, args, False)


def sys_fgetxattr(t: Task, args: Args) -> int:
    """fgetxattr(2)."""
    f = get_file(t, s32(args[0]))
    value = f.getxattr(t, _copy_in_name(t, args[1]))
    return _copy_out_value(t, args[2], args[3], value)


def _names(names: list[bytes]) -> bytes:
    data = b"".join(n + b"\0" for n in names)
    if len(data) > FS.XATTR_LIST_MAX:
        raise SyscallError(errno.E2BIG)
    return data


def sys_listxattr(t: Task, args: Args) -> int:
    """listxattr(2)."""
    names = t.kernel.vfs.listxattr_at(t, t.creds, _pop(t, args[0], True))
    return _copy_out_value(t, args[1], args[2], _names(names))


def sys_llistxattr(t: Task, args: Args) -> int:
    """llistxattr(2)."""
    names = t.kernel.vfs.listxattr_at(t, t.creds, _pop(t, args[0], False))
    return _copy_out_value(t, args[1], args[2], _names(names))


def sys_flistxattr(t: Task, args: Args) -> int:
    """flistxattr(2)."""
    names = get_file(t, s32(args[0])).listxattr(t)
    return _copy_out_value(t, args[1], args[2], _names(names))


def _removexattr(t: Task, args: Args, follow: bool) -> int:
    pop = _pop(t, args[0], follow)
    name = _copy_in_name(t, args[1])
    t.kernel.vfs.removexattr_at(t, t.creds, pop, name)
    return 0


def sys_removexattr(t: Task, args: Args) -> int:
    """removexattr(2)."""
    return _removexattr(t, args, True)


def sys_lremovexattr(t: Task, args: Args) -> int:
    """lremovexattr(2)."""
    return _removexattr(t, args, False)


def sys_fremovexattr(t: Task, args: Args) -> int:
    """fremovexattr(2)."""
    get_file(t, s32(args[0])).removexattr(t, _copy_in_name(t, args[1]))
    return 0


ENTRIES = [
    full(N.SYS_setxattr, "setxattr", sys_setxattr),
    full(N.SYS_lsetxattr, "lsetxattr", sys_lsetxattr),
    full(N.SYS_fsetxattr, "fsetxattr", sys_fsetxattr),
    full(N.SYS_getxattr, "getxattr", sys_getxattr),
    full(N.SYS_lgetxattr, "lgetxattr", sys_lgetxattr),
    full(N.SYS_fgetxattr, "fgetxattr", sys_fgetxattr),
    full(N.SYS_listxattr, "listxattr", sys_listxattr),
    full(N.SYS_llistxattr, "llistxattr", sys_llistxattr),
    full(N.SYS_flistxattr, "flistxattr", sys_flistxattr),
    full(N.SYS_removexattr, "removexattr", sys_removexattr),
    full(N.SYS_lremovexattr, "lremovexattr", sys_lremovexattr),
    full(N.SYS_fremovexattr, "fremovexattr", sys_fremovexattr),
]
