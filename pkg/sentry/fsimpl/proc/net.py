"""/proc/net: the network tables, rendered by pkg/sentry/socket/procnet.py.

Linux makes /proc/net a link to self/net, the tables of the reader's
network namespace; the sandbox has one network namespace, so this is one
directory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkg.sentry.fsimpl.kernfs.kernfs import StaticData, StaticDir
from pkg.sentry.socket import procnet

if TYPE_CHECKING:
    from pkg.sentry.kernel.kernel import Kernel


def net_dir(k: Kernel) -> StaticDir:
    """Returns the /proc/net directory of kernel k."""
    return StaticDir(
        {
            b"dev": StaticData(lambda t: procnet.net_dev(k)),
            b"tcp": StaticData(lambda t: procnet.net_tcp(k)),
            b"tcp6": StaticData(lambda t: procnet.net_tcp6(k)),
            b"udp": StaticData(lambda t: procnet.net_udp(k)),
            b"udp6": StaticData(lambda t: procnet.net_udp6(k)),
            b"unix": StaticData(lambda t: procnet.net_unix(k)),
        }
    )
