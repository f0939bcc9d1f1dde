"""A gofer served on a thread of the test process, for unit tests."""

from __future__ import annotations

import os
import socket
import threading

from pkg.gofer import client, server


class LocalGofer:
    """LocalGofer serves root_dir over a socketpair on a thread.

    Attributes:
        client: the connected client.
        root: the root inode from Mount.
    """

    def __init__(self, root_dir: str, policy: server.Policy | None = None) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._proc_fd = server.open_proc_fd()
        root_fd = os.open(root_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.connection = server.Connection(
            theirs, root_fd, policy or server.Policy(), self._proc_fd
        )
        self._thread = threading.Thread(target=self.connection.serve, daemon=True)
        self._thread.start()
        self.client = client.Client(ours)
        self.root = self.client.mount().root

    def close(self) -> None:
        """Hangs up and waits for the server to release everything."""
        self.client.close()
        self._thread.join()
        os.close(self._proc_fd)
