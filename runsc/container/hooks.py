"""OCI hooks, run on the host as runc runs them.

A hook is a program run with the container's state (the JSON of `runsc
state`) on its standard input, its own args (args[0] is its argv[0]) and
environment, and an optional timeout in seconds. prestart and createRuntime
hooks run during create once the sandbox exists, poststart after start,
poststop when the container is deleted. A failing prestart, createRuntime
or poststart hook fails the verb; a failing poststop hook is only logged,
as the spec asks.
"""

from __future__ import annotations

import json
import logging
import subprocess
from typing import Any

log = logging.getLogger(__name__)


class HookError(Exception):
    """HookError: a hook failed."""


def run_hooks(kind: str, hooks: list[dict[str, Any]], state: dict[str, Any]) -> None:
    """Runs the hooks of one kind in order.

    Raises:
        HookError: a hook could not run, failed, or timed out.
    """
    data = json.dumps(state).encode()
    for h in hooks:
        path = h["path"]
        args = h.get("args") or [path]
        env = dict(e.split("=", 1) for e in h.get("env", []) if "=" in e)
        timeout = h.get("timeout")
        log.debug("hooks: running %s hook %s", kind, args)
        try:
            proc = subprocess.run(
                args,
                executable=path,
                input=data,
                env=env,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise HookError(f"{kind} hook {path} timed out after {timeout}s") from None
        except OSError as e:
            raise HookError(f"{kind} hook {path}: {e.strerror or e}") from None
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).decode(errors="replace").strip()
            raise HookError(
                f"{kind} hook {path} exited with status {proc.returncode}"
                + (f": {detail}" if detail else "")
            )
