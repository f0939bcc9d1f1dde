"""Errors of container verbs, kept light so that runsc's entry point can
name them before it loads anything else."""

from __future__ import annotations


class ContainerError(Exception):
    """ContainerError is a failed verb, with a message for the user."""


class NotExistError(ContainerError):
    """NotExistError: no container has the id."""


class ExecutableError(ContainerError):
    """ExecutableError: the process's executable cannot be started."""
