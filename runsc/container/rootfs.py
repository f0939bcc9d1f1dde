"""Finding a container's executable inside its root, from the host.

runsc checks at create (and exec) time that the process's executable and
working directory exist, as runc does, so that a container client gets the
error from the verb and not from a container that dies at once. It resolves
names as the container would see them: relative to the container's root,
with symlinks (absolute ones included) resolved inside that root, by
openat2's RESOLVE_IN_ROOT, and searching the process's PATH for a bare name
as execvp does. The sandbox then opens the path found through its own VFS.
Errors read like runc's, which container clients recognise (podman turns
"executable file not found" and "no such file or directory" into exit
status 127, "permission denied" into 126).
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat

from runsc.boot import syscalls
from runsc.container.errors import ExecutableError
from runsc.specutils import spec as specutils

__all__ = ["ExecutableError", "check_cwd", "find_executable", "open_executable"]


def _open_in_root(root_fd: int, path: str) -> int:
    fd = syscalls.openat2(
        root_fd,
        path,
        os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY,
        0,
        syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS,
    )
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise OSError(errno.EACCES, "is a directory")
        if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o111:
            raise OSError(errno.EACCES, "permission denied")
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_executable(
    rootfs: str, argv0: str, env: list[str], cwd: str
) -> tuple[int, str]:
    """Opens a process's executable inside a container root.

    Args:
        rootfs: the host path of the container's root.
        argv0: the program as the process's args name it.
        env: the process's environment (for PATH).
        cwd: the process's working directory inside the container.

    Returns:
        The open descriptor (close-on-exec) and the path inside the
        container.

    Raises:
        ExecutableError: not found, or not executable.
    """
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if "/" in argv0:
            path = posixpath.normpath(posixpath.join(cwd or "/", argv0))
            try:
                return _open_in_root(root_fd, path), path
            except OSError as e:
                if e.errno == errno.ENOENT:
                    raise ExecutableError(
                        f'exec: "{argv0}": stat {argv0}: no such file or directory'
                    ) from None
                if e.errno in (errno.EACCES, errno.EPERM):
                    raise ExecutableError(
                        f'exec: "{argv0}": permission denied'
                    ) from None
                raise ExecutableError(f'exec: "{argv0}": {e.strerror}') from None

        denied = False
        for d in specutils.env_path(env).split(":"):
            path = posixpath.normpath(posixpath.join(cwd or "/", d or ".", argv0))
            try:
                return _open_in_root(root_fd, path), path
            except OSError as e:
                if e.errno in (errno.EACCES, errno.EPERM):
                    denied = True
        if denied:
            raise ExecutableError(f'exec: "{argv0}": permission denied')
        raise ExecutableError(f'exec: "{argv0}": executable file not found in $PATH')
    finally:
        os.close(root_fd)


def check_cwd(rootfs: str, cwd: str, missing_ok: bool = False) -> None:
    """Checks that a process's working directory is a directory inside the
    container root (resolved as the container sees it); with missing_ok, it
    may also not exist yet (runc makes the init's).

    Raises:
        ExecutableError: it is not.
    """
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = syscalls.openat2(
            root_fd,
            cwd or "/",
            os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC,
            0,
            syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS,
        )
        os.close(fd)
    except OSError as e:
        if missing_ok and e.errno == errno.ENOENT:
            return
        raise ExecutableError(
            f'chdir to cwd ("{cwd}") set in config.json failed: '
            f"{(e.strerror or str(e)).lower()}"
        ) from None
    finally:
        os.close(root_fd)


def find_executable(rootfs: str, argv0: str, env: list[str], cwd: str) -> str:
    """Returns the path in the container of a process's executable.

    Raises:
        ExecutableError: not found, or not executable.
    """
    fd, path = open_executable(rootfs, argv0, env, cwd)
    os.close(fd)
    return path


def _norm(path: str) -> str:
    # normpath keeps a leading "//".
    return "/" + posixpath.normpath("/" + path).lstrip("/")


def _under(path: str, dest: str) -> bool:
    dest = _norm(dest)
    return path == dest or path.startswith(dest.rstrip("/") + "/")


def resolve_process(
    rootfs: str,
    argv0: str,
    env: list[str],
    cwd: str,
    mounts: list[dict],
    make_cwd: bool = False,
) -> str:
    """Checks a process's working directory and finds its executable as
    check_cwd and find_executable do, except where the spec's mounts
    (which exist only in the sandbox) may hold them: then the sandbox, which
    sees the mounts, resolves them when it creates the process (a name to
    search PATH for is passed on as it is). Docker's --init, for one, runs
    a file bound into the container. With make_cwd (the container's init),
    a missing working directory is not an error: the sandbox makes it, as
    runc does.

    Returns:
        The executable's path in the container, or the bare name for the
        sandbox to search PATH for.

    Raises:
        ExecutableError: not found, or not executable, for certain.
    """
    dests = [m.get("destination", "") for m in mounts]
    cwd_norm = _norm(cwd or "/")
    if not any(_under(cwd_norm, d) for d in dests):
        check_cwd(rootfs, cwd, missing_ok=make_cwd)
    try:
        return find_executable(rootfs, argv0, env, cwd)
    except ExecutableError:
        if "/" in argv0:
            path = posixpath.normpath(posixpath.join(cwd_norm, argv0))
            candidates = [path]
        else:
            path = argv0
            candidates = [
                posixpath.normpath(posixpath.join(cwd_norm, d or ".", argv0))
                for d in specutils.env_path(env).split(":")
            ]
        if any(_under(c, d) for c in candidates for d in dests):
            return path
        raise
