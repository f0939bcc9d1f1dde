"""`runsc ps [--format table|json] ID`: lists the container's processes.

The JSON form is runc's, an array of pids, which containerd's shim parses;
the pids are those inside the sandbox (its processes are not host
processes).
"""

from __future__ import annotations

import argparse
import datetime
import json

from runsc.cmd.util import flag
from runsc.config import Config
from runsc.container.container import Container


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `ps` verb."""
    p = sub.add_parser("ps", help="list a container's processes")
    flag(p, "format", "f", default="table", choices=("table", "json"))
    p.add_argument("container_id", metavar="ID")
    p.add_argument("ps_args", nargs="*", help="ignored (runc passes them to ps)")
    p.set_defaults(func=main)


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `ps`."""
    procs = Container.load(config, args.container_id).processes()
    if args.format == "json":
        print(json.dumps([p.pid for p in procs]))
        return 0
    print(f"{'UID':<8} {'PID':>7} {'PPID':>7} {'THREADS':>7} {'STIME':<8} CMD")
    for p in procs:
        stime = datetime.datetime.fromtimestamp(p.start_time_ns / 1e9).strftime(
            "%H:%M:%S"
        )
        print(f"{p.uid:<8} {p.pid:>7} {p.ppid:>7} {p.threads:>7} {stime:<8} {p.comm}")
    return 0
