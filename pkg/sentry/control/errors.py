"""Errors of the control protocol, kept apart from the server so that the
command line can name them without loading protobuf."""

from __future__ import annotations


class ControlError(Exception):
    """ControlError is a failed request: a message for the user and the host
    errno closest to the failure."""

    def __init__(self, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno
