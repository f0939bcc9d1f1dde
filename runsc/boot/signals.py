"""Which host signals runsc and the sandbox pass on to the container."""

from __future__ import annotations

import signal

# Host signals that runsc (attached) forwards to the sandbox process, and
# that the sandbox forwards to the container's init.
FORWARDED_SIGNALS = (
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
    signal.SIGCONT,
)
