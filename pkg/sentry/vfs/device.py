"""Devices: what opening a character or block device node does.

A device node in any filesystem (tmpfs /dev, say) only records a type and a
device number. Opening it asks the VirtualFilesystem for the Device
registered under that number, and the Device makes the FileDescription, so
that /dev/null behaves the same whichever filesystem holds the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task
    from pkg.sentry.vfs.dentry import VirtualDentry
    from pkg.sentry.vfs.file_description import FileDescription
    from pkg.sentry.vfs.options import OpenOptions

CHAR_DEVICE = 0
BLOCK_DEVICE = 1


class Device:
    """Device opens files for one device number."""

    def open(
        self, t: Task | None, vd: VirtualDentry, opts: OpenOptions
    ) -> FileDescription:
        """Returns a new open file of the device node vd."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class RegisterDeviceOptions:
    """RegisterDeviceOptions: the group name /proc/devices lists the major
    number under (empty: not listed)."""

    group_name: str = ""
