"""Which mounts of an OCI spec are served by the gofer.

The gofer and whoever starts it (runsc create, runsc do) must agree on which
spec mounts get a connection and in what order, since the connections are
handed over as a list of descriptors: the root first, then one per mount
gofer_mounts returns, in that order.
"""

from __future__ import annotations

from typing import Any


def is_gofer_mount(mount: dict[str, Any]) -> bool:
    """Reports whether a spec mount is a bind mount of a host path, which the
    gofer serves (everything else, proc, tmpfs, devpts..., is the sentry's
    own)."""
    options = mount.get("options") or []
    return mount.get("type") == "bind" or "bind" in options or "rbind" in options


def gofer_mounts(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Returns the spec's gofer mounts, in connection order."""
    return [m for m in spec.get("mounts") or [] if is_gofer_mount(m)]
