"""CodeCache: the code that @dataclass compiles at import time, kept across
runs.

@dataclass writes the source of `__init__`, `__repr__`, `__eq__`... of each
class it decorates and compiles it with `exec`: some 75 compilations and 8
ms of every runsc start-up here, a tenth of `runsc do true`, and more with
every dataclass the sentry gains (docs/performance.md). Compiled code is a
function of its source text alone, so runsc keeps the code objects of earlier
runs in a marshal file beside its bytecode cache and hands `exec` the cached
code instead of the text. The generated functions are the same objects they
would otherwise be; only the compilation is skipped.

Only runsc's launcher installs the cache, before runsc.main is imported.
The file is rewritten (atomically) when a run compiled something new: by
the launcher after runsc.main's imports, and by the sandbox process (a fork
of the CLI, runsc/sandbox/forked.py) after the sentry's, through
save_installed(); a file that cannot be read or written is ignored.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import marshal
import os
import sys
from types import CodeType
from typing import Any

# Entries kept before the ones this run did not use are dropped.
_MAX_ENTRIES = 4096

# Code objects are valid only for the interpreter that compiled them.
_HEADER = f"pyvisor-code-cache {sys.hexversion:x} {sys.implementation.cache_tag}\n"


class CodeCache:
    """CodeCache maps source text to its compiled code, backed by a file."""

    __slots__ = ("_codes", "_dirty", "_path", "_used")

    def __init__(self, path: str) -> None:
        self._path = path
        self._codes: dict[str, CodeType] = {}
        self._used: set[str] = set()
        self._dirty = False
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return
        header = _HEADER.encode()
        if not data.startswith(header):
            return
        with contextlib.suppress(EOFError, ValueError, TypeError):
            codes = marshal.loads(data[len(header) :])
            if isinstance(codes, dict):
                self._codes = codes

    def __len__(self) -> int:
        return len(self._codes)

    def exec(
        self,
        source: Any,
        global_ns: dict[str, Any] | None = None,
        local_ns: dict[str, Any] | None = None,
    ) -> None:
        """Runs source as builtins.exec would, compiling it at most once."""
        if not isinstance(source, str):
            builtins.exec(source, global_ns, local_ns)
            return
        code = self._codes.get(source)
        if code is None:
            # dont_inherit: compile with no __future__ flags, as exec does
            # for dataclasses' own module, whatever this module imports.
            code = compile(source, "<string>", "exec", dont_inherit=True)
            self._codes[source] = code
            self._dirty = True
        self._used.add(source)
        builtins.exec(code, global_ns, local_ns)

    def save(self) -> None:
        """Writes the cache back if this run compiled something new."""
        if not self._dirty:
            return
        self._dirty = False
        # Source that no run asks for any more (a dataclass changed) is
        # dropped once the file has grown large.
        if len(self._codes) > _MAX_ENTRIES:
            self._codes = {s: c for s, c in self._codes.items() if s in self._used}
        # Not the pid alone: sandbox processes are pid 1 of their namespace.
        tmp = f"{self._path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        try:
            os.makedirs(os.path.dirname(self._path), exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(_HEADER.encode())
                f.write(marshal.dumps(self._codes))
            os.replace(tmp, self._path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


_installed: CodeCache | None = None


def install(path: str) -> CodeCache:
    """Loads the cache at path and makes dataclasses compile through it.

    dataclasses calls `exec` by its global name; a module global of that
    name takes precedence over the builtin.
    """
    global _installed
    cache = CodeCache(path)
    dataclasses.exec = cache.exec  # type: ignore[attr-defined]
    _installed = cache
    return cache


def save_installed() -> None:
    """Saves the installed cache, if any (after more imports)."""
    if _installed is not None:
        _installed.save()


def uninstall() -> None:
    """Gives dataclasses the builtin exec back."""
    global _installed
    _installed = None
    with contextlib.suppress(AttributeError):
        del dataclasses.exec  # type: ignore[attr-defined]
