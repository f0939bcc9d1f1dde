"""What uname(2) and /proc/version report about the kernel.

The release is that of the Linux ABI the sentry follows.
"""

SYSNAME = "Linux"
RELEASE = "6.1.0"
VERSION = "#1 SMP PREEMPT_DYNAMIC pyvisor"
MACHINE = "x86_64"
