"""`runsc delete [--force] ID`: deletes a stopped or created container.

With --force it kills a running one first, and it always succeeds: a
container that does not exist (already deleted, say) or whose state is
unreadable is no error, and no sandbox process or state is left.
"""

from __future__ import annotations

import argparse
import os

from runsc.cmd.util import flag
from runsc.config import Config


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `delete` verb."""
    p = sub.add_parser("delete", help="delete a container")
    flag(p, "force", "f", action="store_true", help="kill it if it runs")
    p.add_argument("container_id", metavar="ID")
    p.set_defaults(func=main)


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `delete`."""
    # Clients delete, then delete --force, every container: the second call
    # usually finds nothing, and need not load the container machinery.
    if args.force and not os.path.isdir(os.path.join(config.root, args.container_id)):
        return 0
    from runsc.container.container import Container, delete_forced  # noqa: PLC0415

    if args.force:
        delete_forced(config, args.container_id)
        return 0
    Container.load(config, args.container_id).delete()
    return 0
