"""Errors of sandbox processes, kept light so that runsc's entry point can
name them before it loads anything else."""

from __future__ import annotations


class SandboxError(Exception):
    """SandboxError: the sandbox could not be started or reached."""
