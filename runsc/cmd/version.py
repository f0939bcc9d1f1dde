"""`runsc version`: prints the runtime's and the OCI spec's versions."""

from __future__ import annotations

import argparse

from runsc.config import Config

VERSION = "0.1.0"
OCI_VERSION = "1.0.2"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `version` verb."""
    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=main)


def main(config: Config, args: argparse.Namespace) -> int:
    """Runs `version`."""
    print(f"runsc version {VERSION}\nspec: {OCI_VERSION}")
    return 0
