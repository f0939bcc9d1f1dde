"""Errors of spec handling, kept light so that runsc's entry point can name
them before it loads anything else."""

from __future__ import annotations


class SpecError(ValueError):
    """SpecError is a config.json this runtime refuses, with the reason."""
