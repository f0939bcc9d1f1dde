"""Helpers shared by the verbs: flags in the forms container clients write
them, and the errors a verb reports."""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from runsc.config import _bool


def flag(p: argparse.ArgumentParser, *names: str, **kwargs: object) -> None:
    """Adds a flag under its long name (`--name`), its Go-style single-dash
    form (`-name`), and any one-letter short names given (`-b`)."""
    opts: list[str] = []
    for n in names:
        if len(n) == 1:
            opts.append(f"-{n}")
        else:
            opts += [f"--{n}", f"-{n}"]
    p.add_argument(*opts, **kwargs)  # type: ignore[arg-type]


def normalize_verb_flags(p: argparse.ArgumentParser, argv: Iterable[str]) -> list[str]:
    """Rewrites Go-style `--flag=true` and `--flag=false` of p's boolean
    flags as argparse takes them (`--flag`, or nothing). Only flags before
    the first positional argument are touched: what follows may be a
    command's own arguments."""
    bools: set[str] = set()
    values: set[str] = set()
    for action in p._actions:
        if isinstance(action, argparse._StoreTrueAction):
            bools.update(action.option_strings)
        elif action.option_strings and action.nargs is None:
            values.update(action.option_strings)
    out: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--" or not a.startswith("-") or a == "-":
            return out + args[i:]
        name, eq, value = a.partition("=")
        if eq and name in bools:
            if _bool(value, name):
                out.append(name)
        else:
            out.append(a)
            if not eq and a in values and i + 1 < len(args):
                out.append(args[i + 1])
                i += 1
        i += 1
    return out
