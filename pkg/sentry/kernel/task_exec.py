"""execve(2) and execveat(2) (fs/exec.c, fs/binfmt_script.c).

execve replaces the calling process's program. Everything that can fail is
done first, while the caller can still get an error back: copying argv and
envp, opening the file, following `#!` interpreter lines, computing the new
credentials, and loading the ELF image into a fresh address space. Then,
past the point of no return, the other threads of the process are killed
and waited for (the caller takes over the thread group leader's id if it
was not the leader), and the new image is committed: the address space is
replaced, close-on-exec descriptors are closed, caught signals are reset to
their default action, the alternate signal stack is dropped, and the
credentials, name and registers are set for the new program.

Unlike Linux, set-user-ID and set-group-ID bits and file capabilities are
not honoured, as in gVisor without --allow-suid.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from pkg.abi.linux import errno
from pkg.abi.linux import fcntl as F
from pkg.abi.linux import limits as L
from pkg.abi.linux import signal as S
from pkg.errors.syscall_error import SyscallError
from pkg.sentry.kernel.credentials import (
    SUID_DUMP_USER,
    SUID_DUMPABLE,
    Credentials,
    commit_creds,
    exec_credentials,
)
from pkg.sentry.kernel.task_block import block_killable
from pkg.sentry.kernel.task_clone import release_vfork_parent
from pkg.sentry.kernel.task_exit import clear_child_tid
from pkg.sentry.kernel.task_signals import exec_signals
from pkg.sentry.loader.elf import ExecFile
from pkg.sentry.loader.loader import MAX_ARG_STRLEN, LoadArgs, load
from pkg.sentry.mm.memory_manager import MemoryManager
from pkg.sentry.vfs.task_path import ExecutableFile
from pkg.sentry.vfs.task_path import open_executable as vfs_open_executable

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

log = logging.getLogger(__name__)

# The bytes of a file binfmt handlers look at (BINPRM_BUF_SIZE).
BINPRM_BUF_SIZE = 256
# exec_binprm gives up after this many nested interpreters.
MAX_BINFMT_DEPTH = 5
# Strings an argv or envp may hold (MAX_ARG_STRINGS).
MAX_ARG_STRINGS = 0x7FFFFFFF
# The stack limit a secure exec falls back to (_STK_LIM).
_STK_LIM = 8 << 20
# The largest stack the loader maps.
_MAX_STACK = 1 << 30
# Personality bits a privilege-raising exec clears (PER_CLEAR_ON_SETID).
PER_CLEAR_ON_SETID = 0x0400000 | 0x0040000 | 0x0200000 | 0x0100000
# execveat(2) flags.
EXECVEAT_FLAGS = F.AT_EMPTY_PATH | F.AT_SYMLINK_NOFOLLOW


def open_executable(t: Task, dirfd: int, path: bytes, flags: int) -> ExecutableFile:
    """Opens the file execve(at) names, checking it may be executed
    (open_exec): a regular file with execute permission for the task, on a
    mount that allows execution.

    Args:
        t: the calling task.
        dirfd: AT_FDCWD or the directory descriptor of execveat.
        path: the path as the application gave it.
        flags: AT_EMPTY_PATH and AT_SYMLINK_NOFOLLOW.

    Returns:
        The open file; the caller closes it.

    Raises:
        SyscallError: ENOENT, EACCES, ENOTDIR, ELOOP... as open_exec.
    """
    return vfs_open_executable(t, dirfd, path, flags)


def copy_strings(t: Task, addr: int) -> list[bytes]:
    """Reads a NULL-terminated array of string pointers (argv, envp).

    A NULL array is an empty one.

    Raises:
        SyscallError: EFAULT for a bad pointer, E2BIG for an overlong string
            or too many strings.
    """
    out: list[bytes] = []
    if not addr:
        return out
    total = 0
    # The strings and pointers may use a quarter of the stack, and at most
    # three quarters of _STK_LIM (get_arg_page).
    limit = min(t.tg.limits.soft(L.RLIMIT_STACK) // 4, _STK_LIM // 4 * 3)
    while True:
        ptr = t.mm.read_u64(addr + 8 * len(out))
        if not ptr:
            return out
        if len(out) >= MAX_ARG_STRINGS:
            raise SyscallError(errno.E2BIG)
        try:
            s = t.mm.copy_in_string(ptr, MAX_ARG_STRLEN)
        except SyscallError as e:
            if e.errno == errno.ENAMETOOLONG:
                raise SyscallError(errno.E2BIG) from None
            raise
        total += len(s) + 1 + 8
        if total > limit:
            raise SyscallError(errno.E2BIG)
        out.append(s)


def _spacetab(c: int) -> bool:
    return c in (0x20, 0x09)


def parse_interpreter_line(buf: bytes) -> tuple[bytes, bytes | None]:
    """Parses a `#!` line as binfmt_script does.

    The interpreter is the first word after `#!` (spaces and tabs allowed
    before it); everything after the following spaces or tabs up to the end
    of the line, trailing spaces and tabs removed, is one optional argument.
    Without a newline in the first BINPRM_BUF_SIZE bytes, the line is
    accepted only if the interpreter name is followed by a space, tab or NUL
    there (so it was not cut short); the argument may be cut.

    Args:
        buf: the first BINPRM_BUF_SIZE bytes of the file, which start with
            b"#!".

    Returns:
        (interpreter, argument or None).

    Raises:
        SyscallError: ENOEXEC if there is no interpreter name or it may be
            truncated.
    """
    buf = buf[:BINPRM_BUF_SIZE]
    end = buf.find(b"\n")
    if end < 0:
        # The kernel's buffer is NUL-padded past the end of a short file.
        padded = buf + bytes(BINPRM_BUF_SIZE - len(buf))
        last = BINPRM_BUF_SIZE - 1
        i = 2
        while i < last and _spacetab(padded[i]):
            i += 1
        if i >= last:
            raise SyscallError(errno.ENOEXEC)
        j = i
        while j < last and padded[j] not in (0x20, 0x09, 0):
            j += 1
        if j >= last:
            raise SyscallError(errno.ENOEXEC)
        buf = padded
        end = last
    while end > 2 and _spacetab(buf[end - 1]):
        end -= 1
    i = 2
    while i < end and _spacetab(buf[i]):
        i += 1
    if i >= end:
        raise SyscallError(errno.ENOEXEC)
    j = i
    while j < end and buf[j] not in (0x20, 0x09, 0):
        j += 1
    name = buf[i:j]
    arg = None
    if j < end and buf[j] != 0:
        k = j
        while k < end and _spacetab(buf[k]):
            k += 1
        if k < end:
            arg = buf[k:end]
    # Strings end at their first NUL, as the kernel copies C strings.
    name = name.split(b"\0", 1)[0]
    if arg is not None:
        arg = arg.split(b"\0", 1)[0]
    return name, arg


def _exec_filename(dirfd: int, path: bytes) -> bytes:
    """Returns bprm->filename: the path, or a /dev/fd path for execveat
    relative to a descriptor."""
    if not path:
        return b"/dev/fd/%d" % dirfd
    if path.startswith(b"/") or dirfd == F.AT_FDCWD:
        return path
    return b"/dev/fd/%d/%s" % (dirfd, path)


def _fs_shared_outside(t: Task) -> bool:
    """Reports whether t's filesystem context is shared with another
    process (LSM_UNSAFE_SHARE)."""
    with t.kernel.tasks.mu:
        inside = sum(1 for x in t.tg.tasks if x.fs is t.fs)
        return t.fs.users > inside


def execve(
    t: Task,
    dirfd: int,
    path: bytes,
    argv: list[bytes],
    envv: list[bytes],
    flags: int,
) -> None:
    """Replaces t's program (do_execveat_common).

    Raises:
        SyscallError: what execve fails with before the point of no return.
            After it nothing fails: if the process is being killed the task
            simply exits.
    """
    if flags & ~EXECVEAT_FLAGS:
        raise SyscallError(errno.EINVAL)
    if not argv:
        # Since Linux 5.18 an empty argv becomes {""}.
        argv = [b""]
    filename = _exec_filename(dirfd, path)

    opened = [open_executable(t, dirfd, path, flags)]

    def open_interpreter(interp: bytes) -> ExecutableFile:
        f = open_executable(t, F.AT_FDCWD, interp, 0)
        opened.append(f)
        return f

    try:
        # A name under /dev/fd/N of a close-on-exec N will not exist for the
        # interpreter of a script (BINPRM_FLAGS_PATH_INACCESSIBLE).
        inaccessible = False
        if dirfd != F.AT_FDCWD and not path.startswith(b"/"):
            inaccessible = t.fd_table.get_with_flags(dirfd)[1]
        f, argv = follow_scripts(
            opened[0], filename, argv, open_interpreter, inaccessible
        )
        _exec_elf(t, f, filename, argv, envv)
    finally:
        for f in opened:
            f.close()


_F = TypeVar("_F", bound=ExecFile)


def follow_scripts(
    f: _F,
    filename: bytes,
    argv: list[bytes],
    open_interpreter: Callable[[bytes], _F],
    inaccessible: bool = False,
) -> tuple[_F, list[bytes]]:
    """Follows `#!` lines from f to the ELF file to load (binfmt_script).

    Each script's interpreter line becomes the head of argv, followed by the
    script's path and the previous argv without its first element.

    Args:
        f: the file execve opened.
        filename: the path it was opened by (bprm->filename).
        argv: the argument vector execve was given.
        open_interpreter: opens an interpreter by path; the caller owns, and
            closes, what it opens.
        inaccessible: the script's path will not exist for its interpreter
            (BINPRM_FLAGS_PATH_INACCESSIBLE).

    Returns:
        (the file that does not start with `#!`, its argv).

    Raises:
        SyscallError: ENOEXEC for a bad `#!` line, ELOOP for too deep a chain,
            ENOENT for an inaccessible script, or what opening an
            interpreter fails with.
    """
    script_path = filename
    for _depth in range(MAX_BINFMT_DEPTH + 1):
        head = f.pread(BINPRM_BUF_SIZE, 0)
        if head[:2] != b"#!":
            return f, argv
        interp, arg = parse_interpreter_line(head)
        if inaccessible:
            raise SyscallError(errno.ENOENT)
        argv = [interp] + ([arg] if arg is not None else []) + [script_path] + argv[1:]
        script_path = interp
        f = open_interpreter(interp)
    raise SyscallError(errno.ELOOP)


def _exec_elf(
    t: Task, f: ExecutableFile, filename: bytes, argv: list[bytes], envv: list[bytes]
) -> None:
    kernel = t.kernel
    old_creds = t.creds
    creds, secure, gained = exec_credentials(
        old_creds, old_creds.no_new_privs or _fs_shared_outside(t)
    )
    stack_size = t.tg.limits.soft(L.RLIMIT_STACK)
    if secure:
        stack_size = min(stack_size, _STK_LIM)
    stack_size = min(stack_size, _MAX_STACK)

    interpreters: list[ExecutableFile] = []

    def open_interpreter(p: bytes) -> ExecFile:
        interp = open_executable(t, F.AT_FDCWD, p, 0)
        interpreters.append(interp)
        return interp

    mm = MemoryManager(kernel.platform, kernel.mf)
    mm.rlimits = t.tg.limits
    if t.context is not None:
        # The loader's mappings then go straight into the new stub through
        # the task's own stub thread (docs/performance.md). If execve fails,
        # the next switch back into the old address space costs a new stub
        # thread there; nothing else changes.
        try:
            t.context.prepare(mm.address_space, t.state)
        except OSError as e:
            log.debug("exec: tid=%d preparing the context: %s", t.tid, e)
    try:
        result = load(
            LoadArgs(
                mm=mm,
                file=f,
                argv=argv,
                envv=envv,
                filename=filename,
                uid=creds.ruid,
                euid=creds.euid,
                gid=creds.rgid,
                egid=creds.egid,
                secure=secure,
                host_auxv=kernel.host_auxv,
                open_interpreter=open_interpreter,
                stack_size=stack_size,
                vdso=kernel.vdso,
            )
        )
    except BaseException:
        mm.release()
        raise
    finally:
        for interp in interpreters:
            interp.close()

    mm.executable = f.file.vd
    # The point of no return.
    if not _de_thread(t):
        mm.release()
        return
    _commit(t, mm, creds, secure, gained, filename)
    t.state.init_user(result.entry, result.stack_pointer)
    _init_fpstate(t)
    log.debug("exec: tid=%d now runs %r", t.tid, filename)


def _de_thread(t: Task) -> bool:
    """Kills every other thread of t's process and waits for them to be
    gone; t becomes the thread group leader (de_thread).

    Returns:
        False if the process is being killed (t must exit instead).
    """
    tg = t.tg
    ts = t.kernel.tasks
    sh = tg.signal_handlers
    with ts.mu, sh.mu:
        if t.exiting or tg.exiting or tg.exec_task not in (None, t):
            return False
        if len(tg.tasks) == 1 and tg.leader is t:
            return True
        tg.exec_task = t
        for x in tg.tasks:
            if x is not t:
                x.exiting = True
                x.interrupt()
    ok = block_killable(t, lambda: len(tg.tasks) == 1)
    with ts.mu, sh.mu:
        tg.exec_task = None
        if not ok or t.exiting or tg.exiting:
            return False
        leader = tg.leader
        if leader is not t:
            # Take over the leader's id, which the zombie leader kept.
            assert leader is not None
            ts.release_id(t.tid)
            del ts.tasks[t.tid]
            t.tid = tg.tgid
            ts.tasks[t.tid] = t
            tg.leader = t
            t.start_ns = leader.start_ns
    return True


def _commit(
    t: Task,
    mm: MemoryManager,
    creds: Credentials,
    secure: bool,
    gained: bool,
    filename: bytes,
) -> None:
    """Installs the loaded image and resets what execve resets."""
    kernel = t.kernel
    tg = t.tg
    ts = kernel.tasks

    # A new program is no "clone" child: its parent gets SIGCHLD and sees it
    # in ordinary waits, as Linux does after execve; and its parent may no
    # longer move it to another process group. Done before a vfork parent
    # resumes and looks.
    with ts.mu:
        tg.exec_id += 1
        tg.exit_signal = S.SIGCHLD
        tg.execed = True

    # Signal actions shared with another process are copied first
    # (unshare_sighand). Then, with the old image still in place for its
    # robust and PI futexes, the signal state is reset: handled signals
    # revert to SIG_DFL, the alternate stack and POSIX timers go.
    sh = tg.signal_handlers
    with ts.mu:
        shared = any(
            other is not tg and other.signal_handlers is sh
            for other in ts.thread_groups.values()
        )
    if shared:
        sh = sh.copy()
        with ts.mu, tg.signal_handlers.mu:
            tg.signal_handlers = sh
    exec_signals(t)

    # The old address space: clear the CLONE_CHILD_CLEARTID word and drop it
    # (exec_mmap).
    clear_child_tid(t)
    old_mm = t.mm
    with ts.mu:
        old_mm.users -= 1
        release_old = old_mm.users == 0
        t.mm = mm
    if release_old:
        old_mm.release()

    # A descriptor table shared with another process is copied first
    # (unshare_files), so close-on-exec affects only this process.
    fdt = t.fd_table
    if fdt.users > 1:
        new_fdt = fdt.fork()
        with ts.mu:
            fdt.users -= 1
            t.fd_table = new_fdt
    t.fd_table.close_on_exec()

    # Dumpable unless the ids differ (begin_new_exec); then commit_creds
    # makes it non-dumpable, and drops the parent-death signal, if the exec
    # changed an effective or fs id or grew the permitted set.
    old = t.creds
    tg.dumpable = (
        SUID_DUMP_USER
        if old.euid == old.ruid and old.egid == old.rgid
        else SUID_DUMPABLE
    )
    if secure:
        t.pdeath_signal = 0
    commit_creds(t, creds)
    if gained:
        t.personality &= ~PER_CLEAR_ON_SETID
    t.name = os.path.basename(filename)[:15]

    # A vfork parent resumes once the child is entirely the new program.
    release_vfork_parent(t)


# FXSAVE defaults of a fresh FPU: FCW 0x37f, MXCSR 0x1f80 and its mask.
_FCW_OFF = 0
_MXCSR_OFF = 24
_XSTATE_BV_OFF = 512


def _init_fpstate(t: Task) -> None:
    """Gives t a freshly initialised FPU, as execve does."""
    fp = t.state.fpstate
    fp[:] = bytes(len(fp))
    struct.pack_into("<H", fp, _FCW_OFF, 0x37F)
    struct.pack_into("<II", fp, _MXCSR_OFF, 0x1F80, 0xFFFF)
    t.state.fpstate_valid = True
    t.state.fpstate_dirty = True
