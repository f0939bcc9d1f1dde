"""The system-wide files of /proc: cpuinfo, meminfo, stat, uptime, loadavg,
version, filesystems... (fs/proc/*.c).

Every number comes from the sentry's state: its tasks, its CPU count, its
MemoryFile. The only host fact is a static one captured at start-up, before
the sentry stops opening host paths: the CPU's description (/proc/cpuinfo of
the host, copied in by confine.py). Memory is the sandbox's own, as gVisor
shows it: MemTotal is the container's memory limit (or the host's memory
without one), MemFree and MemAvailable what of it the MemoryFile does not
hold.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkg.sentry.fsimpl.proc.task_files import ticks
from pkg.sentry.kernel import version as V
from pkg.sentry.kernel.cputime import task_cputime
from pkg.sentry.kernel.sched_stats import runnable_tasks

if TYPE_CHECKING:
    from pkg.sentry.kernel.kernel import Kernel
    from pkg.sentry.kernel.task import Task


@dataclass(frozen=True, slots=True)
class HostFacts:
    """HostFacts are the static host facts procfs shows, captured once.

    Attributes:
        cpuinfo_block: the host's first /proc/cpuinfo block as (key,
            value) pairs, or () if it could not be read.
    """

    cpuinfo_block: tuple[tuple[str, str], ...]


def capture_host_facts() -> HostFacts:
    """Reads the host facts (at start-up only)."""
    block: list[tuple[str, str]] = []
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        text = ""
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            # The key keeps its tabs, which align the values.
            block.append((key, value.strip()))
    return HostFacts(tuple(block))


def cpuinfo(facts: HostFacts, ncpus: int) -> bytes:
    """Returns /proc/cpuinfo: the host CPU's description once per sandbox
    CPU, each numbered as a core of one package."""
    base = list(facts.cpuinfo_block) or [
        ("processor\t", "0"),
        ("vendor_id\t", "unknown"),
        ("model name\t", "unknown"),
        ("flags\t\t", "fpu"),
    ]
    out = []
    for cpu in range(ncpus):
        lines = []
        for raw_key, host_value in base:
            key = raw_key.rstrip("\t ")
            value = host_value
            if key == "physical id":
                value = "0"
            elif key in ("siblings", "cpu cores"):
                value = str(ncpus)
            elif key in ("processor", "core id", "apicid", "initial apicid"):
                value = str(cpu)
            lines.append(f"{raw_key}: {value}".rstrip())
        out.append("\n".join(lines) + "\n")
    return "\n".join(out).encode() + b"\n"


def meminfo(kernel: Kernel) -> bytes:
    """Returns /proc/meminfo: the sandbox's memory and the MemoryFile's use
    of it. With nothing to reclaim, MemAvailable is MemFree."""
    total = kernel.total_memory
    free = kernel.free_memory()
    used = total - free
    kb = 1024
    rows = [
        ("MemTotal", total // kb),
        ("MemFree", free // kb),
        ("MemAvailable", free // kb),
        ("Buffers", 0),
        ("Cached", 0),
        ("SwapCached", 0),
        ("Active", used // kb),
        ("Inactive", 0),
        ("Active(anon)", used // kb),
        ("Inactive(anon)", 0),
        ("Active(file)", 0),
        ("Inactive(file)", 0),
        ("Unevictable", 0),
        ("Mlocked", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Dirty", 0),
        ("Writeback", 0),
        ("AnonPages", used // kb),
        ("Mapped", 0),
        ("Shmem", 0),
        ("KReclaimable", 0),
        ("Slab", 0),
        ("SReclaimable", 0),
        ("SUnreclaim", 0),
        ("KernelStack", 0),
        ("PageTables", 0),
        ("CommitLimit", total // 2 // kb),
        ("Committed_AS", kernel.mf.allocated // kb),
        ("VmallocTotal", 34359738367),
        ("VmallocUsed", 0),
        ("VmallocChunk", 0),
        ("HugePages_Total", -1),
    ]
    lines = []
    for key, value in rows:
        if key.startswith("HugePages"):
            continue
        lines.append(f"{key + ':':<16}{value:>8} kB")
    for key in ("HugePages_Total", "HugePages_Free", "HugePages_Rsvd"):
        lines.append(f"{key + ':':<16}{0:>8}")
    lines.append(f"{'HugePages_Surp:':<16}{0:>8}")
    lines.append(f"{'Hugepagesize:':<16}{2048:>8} kB")
    return ("\n".join(lines) + "\n").encode()


def _busy_ns(kernel: Kernel) -> tuple[int, int]:
    """Returns (user, system) nanoseconds of every live task."""
    user = system = 0
    for t in kernel.tasks.live_tasks():
        u, s = task_cputime(t)
        user += u
        system += s
    return user, system


def uptime(kernel: Kernel) -> bytes:
    """Returns /proc/uptime: seconds since boot and idle CPU-seconds."""
    up = kernel.uptime_ns()
    user, system = _busy_ns(kernel)
    idle = max(0, up * kernel.num_cpus - user - system)
    return f"{up / 1e9:.2f} {idle / 1e9:.2f}\n".encode()


def loadavg(kernel: Kernel) -> bytes:
    """Returns /proc/loadavg: the load averages the kernel samples every
    5 s (sched_stats.py), the runnable and all tasks, the last pid."""
    tasks = kernel.tasks.live_tasks()
    # The reader itself is running.
    running = max(1, len(runnable_tasks(kernel)))
    last = kernel.tasks.last_id()
    load = kernel.stats.load.text()
    return f"{load} {running}/{len(tasks)} {last}\n".encode()


def stat(kernel: Kernel, reader: Task | None) -> bytes:
    """Returns /proc/stat: CPU time in clock ticks, the boot time and the
    process counts."""
    up = kernel.uptime_ns()
    n = kernel.num_cpus
    user, system = _busy_ns(kernel)
    idle = max(0, up * n - user - system)

    def row(name: str, u: int, s: int, i: int) -> str:
        return f"{name} {ticks(u)} 0 {ticks(s)} {ticks(i)} 0 0 0 0 0 0"

    lines = [row("cpu ", user, system, idle)]
    for cpu in range(n):
        lines.append(row(f"cpu{cpu}", user // n, system // n, idle // n))
    running = max(1, len(runnable_tasks(kernel)))
    boot_time = int(time.time() - up / 1e9)
    lines += [
        "intr 0",
        f"ctxt {kernel.stats.total_switches(kernel)}",
        f"btime {boot_time}",
        f"processes {kernel.stats.forks}",
        f"procs_running {running}",
        "procs_blocked 0",
        "softirq 0 0 0 0 0 0 0 0 0 0 0",
    ]
    return ("\n".join(lines) + "\n").encode()


def version() -> bytes:
    """Returns /proc/version."""
    return (
        f"{V.SYSNAME} version {V.RELEASE} (pyvisor@sentry) (gcc version 12) "
        f"{V.VERSION}\n"
    ).encode()


def filesystems(kernel: Kernel) -> bytes:
    """Returns /proc/filesystems: the types applications may see."""
    out = []
    for name, opts in kernel.vfs.filesystem_types():
        if not opts.allow_user_list:
            continue
        out.append(("" if opts.requires_device else "nodev") + f"\t{name}\n")
    return "".join(out).encode()


def cmdline() -> bytes:
    """Returns /proc/cmdline, the kernel's command line."""
    return f"BOOT_IMAGE=/vmlinuz-{V.RELEASE}-pyvisor quiet\n".encode()


def vmstat(kernel: Kernel) -> bytes:
    """Returns /proc/vmstat: page counts from the MemoryFile; the event
    counters the sentry does not keep read 0 (TODO(#5))."""
    page = 4096
    free = kernel.free_memory() // page
    used = kernel.total_memory // page - free
    rows = [
        ("nr_free_pages", free),
        ("nr_inactive_anon", 0),
        ("nr_active_anon", used),
        ("nr_inactive_file", 0),
        ("nr_active_file", 0),
        ("nr_unevictable", 0),
        ("nr_mlock", 0),
        ("nr_anon_pages", used),
        ("nr_mapped", 0),
        ("nr_file_pages", 0),
        ("nr_dirty", 0),
        ("nr_writeback", 0),
        ("nr_shmem", 0),
        ("nr_dirtied", 0),
        ("nr_written", 0),
        ("pgpgin", 0),
        ("pgpgout", 0),
        ("pswpin", 0),
        ("pswpout", 0),
        ("pgalloc_normal", 0),
        ("pgfree", 0),
        ("pgactivate", 0),
        ("pgfault", 0),
        ("pgmajfault", 0),
        ("oom_kill", 0),
    ]
    return "".join(f"{k} {v}\n" for k, v in rows).encode()


def devices(kernel: Kernel) -> bytes:
    """Returns /proc/devices: the registered device numbers by group."""
    char = ["Character devices:"]
    block = ["", "Block devices:"]
    for kind, major, name in kernel.vfs.registered_devices():
        (block if kind else char).append(f"{major:3d} {name}")
    return ("\n".join(char + block) + "\n").encode()


def swaps() -> bytes:
    """Returns /proc/swaps: the header of no swap areas."""
    return b"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"


def partitions() -> bytes:
    """Returns /proc/partitions: the header of no block devices."""
    return b"major minor  #blocks  name\n\n"
