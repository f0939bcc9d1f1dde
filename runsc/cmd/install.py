"""`runsc install` and `runsc uninstall`: register this runsc as a runtime
with Docker (daemon.json) and podman (containers.conf).

    runsc install [--runtime NAME] [--docker-config F] [--podman-config F]
                  [--path RUNSC] [-- RUNTIME_FLAGS...]

Docker gets `runtimes.NAME = {"path": RUNSC, "runtimeArgs": [...]}`;
podman gets `NAME = ["RUNSC"]` in `[engine.runtimes]`. podman cannot pass
flags per runtime: with runtime flags, point --path at a wrapper script
that adds them. An empty --docker-config or --podman-config skips that
client. Both files are rewritten atomically; other settings are kept.
Restart dockerd for the change to take effect.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tomllib

from runsc.cmd.util import flag
from runsc.config import Config
from runsc.container.state import write_atomic

log = logging.getLogger(__name__)

DOCKER_CONFIG = "/etc/docker/daemon.json"
PODMAN_CONFIG = "/etc/containers/containers.conf"
_PODMAN_TABLE = "[engine.runtimes]"


def self_path() -> str:
    """Returns the path to run this runsc by: the program as invoked (the
    launcher sets sys.argv[0] to its own path)."""
    return os.path.abspath(sys.argv[0])


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers the `install` and `uninstall` verbs."""
    for verb, fn in (("install", install), ("uninstall", uninstall)):
        p = sub.add_parser(verb, help=f"{verb} runsc as a Docker and podman runtime")
        flag(p, "runtime", default="runsc", help="the runtime's name")
        flag(p, "docker-config", default=DOCKER_CONFIG, help="Docker's daemon.json")
        flag(p, "podman-config", default=PODMAN_CONFIG, help="containers.conf")
        flag(p, "path", default="", help="the runsc to register (default: this one)")
        p.add_argument("runtime_flags", nargs=argparse.REMAINDER)
        p.set_defaults(func=fn)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def edit_docker(text: str, name: str, path: str | None, flags: list[str]) -> str:
    """Returns daemon.json with the runtime added (path) or removed (None)."""
    cfg = json.loads(text) if text.strip() else {}
    if not isinstance(cfg, dict):
        raise ValueError("daemon.json is not a JSON object")
    runtimes = cfg.setdefault("runtimes", {})
    if path is None:
        runtimes.pop(name, None)
        if not runtimes:
            del cfg["runtimes"]
    else:
        entry: dict[str, object] = {"path": path}
        if flags:
            entry["runtimeArgs"] = flags
        runtimes[name] = entry
    return json.dumps(cfg, indent=2) + "\n"


def edit_podman(text: str, name: str, path: str | None) -> str:
    """Returns containers.conf with the runtime added (path) or removed
    (None) in [engine.runtimes]."""
    lines = text.splitlines()
    key = re.compile(rf"^\s*{re.escape(name)}\s*=")
    start = next((i for i, ln in enumerate(lines) if ln.strip() == _PODMAN_TABLE), -1)
    if start < 0:
        if path is None:
            return text
        prefix = text if not text or text.endswith("\n") else text + "\n"
        return f"{prefix}\n{_PODMAN_TABLE}\n{name} = [{json.dumps(path)}]\n"
    header = re.compile(r"^\s*\[\[?[\w.\"' -]+\]\]?\s*(#.*)?$")
    end = next(
        (i for i in range(start + 1, len(lines)) if header.match(lines[i])),
        len(lines),
    )
    out = lines[: start + 1]
    i = start + 1
    while i < end:
        ln = lines[i]
        if key.match(ln):
            # Skip the old value, which may span lines until its "]".
            value = ln.split("=", 1)[1]
            while "]" not in value and i + 1 < end:
                i += 1
                value = lines[i]
            i += 1
            continue
        out.append(ln)
        i += 1
    if path is not None:
        out.insert(start + 1, f"{name} = [{json.dumps(path)}]")
    out += lines[end:]
    result = "\n".join(out) + "\n"
    tomllib.loads(result)
    return result


def _apply(args: argparse.Namespace, path: str | None) -> None:
    flags = (
        args.runtime_flags[1:]
        if args.runtime_flags[:1] == ["--"]
        else args.runtime_flags
    )
    if args.docker_config:
        new = edit_docker(_read(args.docker_config), args.runtime, path, flags)
        os.makedirs(os.path.dirname(args.docker_config) or ".", exist_ok=True)
        write_atomic(args.docker_config, new.encode())
        log.info("install: updated %s", args.docker_config)
    if args.podman_config:
        if flags and path is not None:
            log.warning(
                "install: podman cannot pass runtime flags %s; use --path with a "
                "wrapper script that adds them",
                flags,
            )
        new = edit_podman(_read(args.podman_config), args.runtime, path)
        os.makedirs(os.path.dirname(args.podman_config) or ".", exist_ok=True)
        write_atomic(args.podman_config, new.encode())
        log.info("install: updated %s", args.podman_config)


def install(config: Config, args: argparse.Namespace) -> int:
    """Runs `install`."""
    _apply(args, os.path.abspath(args.path) if args.path else self_path())
    return 0


def uninstall(config: Config, args: argparse.Namespace) -> int:
    """Runs `uninstall`."""
    _apply(args, None)
    return 0
