"""`runsc help [VERB | syscalls]`: help on a verb, or the system call table.

`runsc help syscalls` prints every entry of the sentry's amd64 table: its
number, name, support level (full, partial, error) and note, and counts
the numbers the table leaves out (they fail with ENOSYS).
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from runsc.config import Config


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `help` verb."""
    p = sub.add_parser("help", help="show help, or the system call table")
    p.add_argument("topic", nargs="?", default="")
    p.set_defaults(func=main)


def print_syscalls(out: TextIO = sys.stdout) -> None:
    """Prints the system call table."""
    # Only this topic needs the sentry's table.
    from pkg.sentry.syscalls.linux import linux64  # noqa: PLC0415

    entries = sorted(linux64.entries(), key=lambda e: e.number)
    counts: dict[str, int] = {}
    print(f"{'NR':>4}  {'NAME':<24} {'SUPPORT':<8} NOTE", file=out)
    for e in entries:
        counts[e.support] = counts.get(e.support, 0) + 1
        print(f"{e.number:>4}  {e.name:<24} {e.support:<8} {e.note}".rstrip(), file=out)
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    print(
        f"\n{len(entries)} entries ({summary}); every other number fails with ENOSYS",
        file=out,
    )


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `help`."""
    from runsc.main import build_parser  # noqa: PLC0415

    if args.topic == "syscalls":
        print_syscalls()
        return 0
    parser, subparsers = build_parser()
    if args.topic:
        sub = subparsers.choices.get(args.topic)
        if sub is None:
            print(f"runsc: no help topic {args.topic!r}", file=sys.stderr)
            return 2
        sub.print_help()
        return 0
    parser.print_help()
    print("\nTopics: runsc help VERB, runsc help syscalls")
    return 0
