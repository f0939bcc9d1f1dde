"""FSContext: a task's root and working directory (struct fs_struct)."""

from __future__ import annotations

import threading


class FSContext:
    """FSContext holds the root, the working directory and the umask.

    Shared by CLONE_FS tasks. Until the VFS resolves paths itself, root and
    cwd are absolute paths in the container's file tree.
    """

    __slots__ = ("cwd", "mu", "root", "umask", "users")

    def __init__(self, root: object, cwd: object, umask: int = 0o022) -> None:
        self.mu = threading.Lock()
        self.root = root
        self.cwd = cwd
        self.umask = umask
        self.users = 1

    def fork(self) -> FSContext:
        """Returns a copy for a child without CLONE_FS."""
        with self.mu:
            return FSContext(self.root, self.cwd, self.umask)
