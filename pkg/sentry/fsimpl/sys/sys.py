"""sysfs: the "sysfs" filesystem type, with what programs probe
(drivers/base/cpu.c, mm/huge_memory.c, kernel/cgroup).

- /sys/devices/system/cpu: online, possible, present, kernel_max and a
  cpuN directory per sandbox CPU (its topology); libc's
  sysconf(_SC_NPROCESSORS_ONLN) and runtimes (Go, Java, Node) read these;
- /sys/devices/system/node: one NUMA node holding every CPU;
- /sys/kernel/mm/transparent_hugepage: enabled, defrag, hpage_pmd_size;
- /sys/fs/cgroup: an empty directory (no cgroup filesystem is mounted);
- the other top-level directories, empty.

Every file is made up from the sentry's CPU count; the tree is read-only
(the sandbox mounts it so; files are 0444 or 0644 as Linux's).
TODO(#5): /sys/class/net, /sys/block and devices for the sandbox's
network and disks.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pkg.abi.linux import fs as FS
from pkg.sentry.fsimpl.kernfs.kernfs import (
    Inode,
    KernfsFilesystem,
    StaticData,
    StaticDir,
)
from pkg.sentry.vfs.filesystem import FilesystemType

if TYPE_CHECKING:
    from pkg.sentry.kernel.credentials import Credentials
    from pkg.sentry.kernel.kernel import Kernel
    from pkg.sentry.vfs.dentry import Dentry
    from pkg.sentry.vfs.filesystem import Filesystem, GetFilesystemOptions
    from pkg.sentry.vfs.vfs import VirtualFilesystem

# NR_CPUS - 1 of a distribution kernel (kernel_max).
_KERNEL_MAX = 8191
_HPAGE_PMD_SIZE = 2 << 20


def cpu_range(n: int) -> str:
    """Returns the list "0-N" of n CPUs (cpumask_print_to_pagebuf)."""
    return "0" if n == 1 else f"0-{n - 1}"


def _text(value: str, perm: int = 0o444) -> StaticData:
    return StaticData((value + "\n").encode(), perm)


def _cpu_dir(cpu: int, ncpus: int) -> StaticDir:
    topology = StaticDir(
        {
            b"core_id": _text(str(cpu)),
            b"core_cpus_list": _text(str(cpu)),
            b"die_id": _text("0"),
            b"package_cpus_list": _text(cpu_range(ncpus)),
            b"physical_package_id": _text("0"),
            b"thread_siblings_list": _text(str(cpu)),
            b"core_siblings_list": _text(cpu_range(ncpus)),
        }
    )
    children: dict[bytes, Inode] = {b"topology": topology}
    if cpu != 0:
        # cpu0 cannot be taken offline, so it has no "online" file.
        children[b"online"] = _text("1", 0o644)
    return StaticDir(children)


def _tree(ncpus: int) -> StaticDir:
    cpus: dict[bytes, Inode] = {
        b"kernel_max": _text(str(_KERNEL_MAX)),
        b"offline": _text(""),
        b"online": _text(cpu_range(ncpus)),
        b"possible": _text(cpu_range(ncpus)),
        b"present": _text(cpu_range(ncpus)),
    }
    for cpu in range(ncpus):
        cpus[f"cpu{cpu}".encode()] = _cpu_dir(cpu, ncpus)
    node0 = StaticDir({b"cpulist": _text(cpu_range(ncpus))})
    nodes = StaticDir(
        {
            b"has_cpu": _text("0"),
            b"has_memory": _text("0"),
            b"node0": node0,
            b"online": _text("0"),
            b"possible": _text("0"),
        }
    )
    system = StaticDir({b"cpu": StaticDir(cpus), b"node": nodes})
    thp = StaticDir(
        {
            b"defrag": _text("always defer defer+madvise [madvise] never", 0o644),
            b"enabled": _text("always [madvise] never", 0o644),
            b"hpage_pmd_size": _text(str(_HPAGE_PMD_SIZE)),
            b"shmem_enabled": _text(
                "always within_size advise [never] deny force", 0o644
            ),
            b"use_zero_page": _text("1", 0o644),
        }
    )
    kernel = StaticDir({b"mm": StaticDir({b"transparent_hugepage": thp})})
    fs = StaticDir({b"cgroup": StaticDir()})
    return StaticDir(
        {
            b"block": StaticDir(),
            b"bus": StaticDir(),
            b"class": StaticDir(),
            b"dev": StaticDir(),
            b"devices": StaticDir({b"system": system}),
            b"firmware": StaticDir(),
            b"fs": fs,
            b"kernel": kernel,
            b"module": StaticDir(),
            b"power": StaticDir(),
        }
    )


class SysType(FilesystemType):
    """SysType makes sysfs instances describing one kernel's CPUs."""

    name = "sysfs"

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.boot_time_ns = time.time_ns()

    def get_filesystem(
        self, vfs: VirtualFilesystem, creds: Credentials, opts: GetFilesystemOptions
    ) -> tuple[Filesystem, Dentry]:
        # sysfs takes no options of its own; the data string is ignored, as
        # Linux's sysfs_get_tree does.
        fs = KernfsFilesystem(
            vfs,
            self,
            _tree(self.kernel.num_cpus),
            FS.SYSFS_MAGIC,
            boot_time_ns=self.boot_time_ns,
        )
        return fs, fs.root
