"""`runsc spec [--bundle B]`: writes a starter config.json.

The spec runs `sh` in ./rootfs, read-only, with a terminal, in new
namespaces, with the capabilities Docker grants by default. Edit
process.args, and set process.terminal to false to run without a
terminal.
"""

from __future__ import annotations

import argparse
import json
import os

from runsc.cmd.util import flag
from runsc.cmd.version import OCI_VERSION
from runsc.config import Config
from runsc.specutils.spec import DEFAULT_PATH

# Docker's default capabilities.
DEFAULT_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]


def default_spec(args: list[str] | None = None, terminal: bool = True) -> dict:
    """Returns a starter spec."""
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": args or ["sh"],
            "env": [f"PATH={DEFAULT_PATH}", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                kind: list(DEFAULT_CAPS)
                for kind in ("bounding", "effective", "permitted")
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runsc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
        ],
        "linux": {
            "namespaces": [
                {"type": t} for t in ("pid", "network", "ipc", "uts", "mount")
            ]
        },
    }


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `spec` verb."""
    p = sub.add_parser("spec", help="write a starter config.json")
    flag(p, "bundle", "b", default=".", help="directory to write config.json in")
    flag(p, "rootless", action="store_true", help="accepted for runc compatibility")
    p.set_defaults(func=main)


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `spec`."""
    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise ValueError(f"{path} exists; remove it first")
    with open(path, "x") as f:
        json.dump(default_spec(), f, indent=2)
        f.write("\n")
    return 0
