"""Logging set-up for runsc and the sandbox.

The debug log (--debug-log) gets glog-style lines from every subsystem,
including --strace output. The --log file gets errors, as text or as the
JSON lines that container clients read (--log-format json). Nothing the
sentry logs goes to the application's stdout.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from runsc.config import Config

_LEVEL_LETTER = {
    logging.DEBUG: "D",
    logging.INFO: "I",
    logging.WARNING: "W",
    logging.ERROR: "E",
    logging.CRITICAL: "F",
}


def _timestamp(t: float, fmt: str) -> str:
    """Formats t (seconds since the epoch) in local time with fmt, then a
    dot and microseconds, as datetime's %f would."""
    return f"{time.strftime(fmt, time.localtime(t))}.{int(t % 1 * 1e6):06d}"


class GlogFormatter(logging.Formatter):
    """GlogFormatter writes `I1204 16:37:00.123456  1234 file.py:12] msg`."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + self.formatException(record.exc_info)
        return (
            f"{_LEVEL_LETTER.get(record.levelno, 'I')}"
            f"{_timestamp(record.created, '%m%d %H:%M:%S')} "
            f"{record.process:>7} {record.filename}:{record.lineno}] {msg}"
        )


class JsonFormatter(logging.Formatter):
    """JsonFormatter writes runc's log lines: {"level","msg","time"}."""

    def format(self, record: logging.LogRecord) -> str:
        # Imported here: json and datetime cost runsc about 4 ms of start-up
        # (docs/performance.md), and only --log-format=json needs them.
        import datetime  # noqa: PLC0415
        import json  # noqa: PLC0415

        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + self.formatException(record.exc_info)
        return json.dumps(
            {
                "level": record.levelname.lower(),
                "msg": msg,
                "time": datetime.datetime.fromtimestamp(record.created)
                .astimezone()
                .isoformat(),
            }
        )


class ShortFormatter(logging.Formatter):
    """ShortFormatter writes `runsc: msg` with no traceback, for stderr."""

    def format(self, record: logging.LogRecord) -> str:
        return f"runsc: {record.getMessage()}"


def debug_log_path(config: Config, command: str) -> str:
    """Resolves --debug-log: a path ending in / is a directory that gets one
    file per command and process."""
    path = config.debug_log
    if not path:
        return ""
    if path.endswith("/"):
        os.makedirs(path, exist_ok=True)
        stamp = _timestamp(time.time(), "%Y%m%d-%H%M%S")
        return os.path.join(path, f"runsc.log.{stamp}.{command}.{os.getpid()}")
    return path


def setup(config: Config, command: str, stderr_errors: bool = True) -> None:
    """Configures the root logger for one runsc process."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(logging.DEBUG if config.debug else logging.INFO)

    path = debug_log_path(config, command)
    if path:
        h = logging.FileHandler(path)
        h.setFormatter(GlogFormatter())
        h.setLevel(logging.DEBUG if config.debug else logging.INFO)
        root.addHandler(h)
    elif config.strace:
        # Without a debug log, --strace still has to show something.
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(GlogFormatter())
        h.addFilter(lambda r: r.name == "strace")
        root.addHandler(h)

    if config.log:
        h = logging.FileHandler(config.log)
        h.setFormatter(
            JsonFormatter() if config.log_format == "json" else GlogFormatter()
        )
        h.setLevel(logging.WARNING)
        root.addHandler(h)
    if stderr_errors:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(ShortFormatter())
        h.setLevel(logging.ERROR)
        root.addHandler(h)
