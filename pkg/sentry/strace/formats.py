"""Argument formats for --strace and the per-syscall format table.

The table says, for each system call, how each argument is shown; the
Strace class applies it. Handlers never print anything themselves.
"""

from __future__ import annotations

# Argument kinds. Kinds ending in _OUT are shown at syscall exit, after the
# handler has filled the memory they point to.
HEX = "hex"
INT = "int"
UINT = "uint"
OCT = "oct"
FD = "fd"
PATH = "path"
STRING = "string"
WRITE_BUF = "write_buf"  # buffer whose length is the next argument
READ_BUF_OUT = "read_buf_out"  # buffer filled up to the return value
IOVEC = "iovec"  # iovec array whose count is the next argument
READ_IOVEC_OUT = "read_iovec_out"
OPEN_FLAGS = "open_flags"
MMAP_PROT = "mmap_prot"
MMAP_FLAGS = "mmap_flags"
CLONE_FLAGS = "clone_flags"
SIGNAL = "signal"
SIGSET = "sigset"  # pointer to a sigset_t
SIGACTION = "sigaction"
SIGMASK_HOW = "sigmask_how"
STRING_VECTOR = "string_vector"  # argv/envp
TIMESPEC = "timespec"
TIMESPEC_OUT = "timespec_out"
CLOCK_ID = "clock_id"
UTSNAME_OUT = "utsname_out"
RLIMIT = "rlimit"
ARCH_PRCTL_CODE = "arch_prctl_code"
FUTEX_OP = "futex_op"
IOCTL_CMD = "ioctl_cmd"
WHENCE = "whence"
AT_FLAGS = "at_flags"
DIRFD = "dirfd"
STAT_OUT = "stat_out"
PTR = "ptr"

# name: argument kinds in order. Calls not listed show six hex arguments.
SYSCALL_FORMATS: dict[str, tuple[str, ...]] = {
    "read": (FD, READ_BUF_OUT, UINT),
    "write": (FD, WRITE_BUF, UINT),
    "open": (PATH, OPEN_FLAGS, OCT),
    "close": (FD,),
    "stat": (PATH, STAT_OUT),
    "fstat": (FD, STAT_OUT),
    "lstat": (PATH, STAT_OUT),
    "poll": (PTR, UINT, INT),
    "lseek": (FD, INT, WHENCE),
    "mmap": (HEX, HEX, MMAP_PROT, MMAP_FLAGS, FD, HEX),
    "mprotect": (HEX, HEX, MMAP_PROT),
    "munmap": (HEX, HEX),
    "brk": (HEX,),
    "mremap": (HEX, HEX, HEX, HEX, HEX),
    "msync": (HEX, HEX, HEX),
    "mincore": (HEX, HEX, PTR),
    "madvise": (HEX, HEX, INT),
    "mlock": (HEX, HEX),
    "mlock2": (HEX, HEX, HEX),
    "munlock": (HEX, HEX),
    "mlockall": (HEX,),
    "munlockall": (),
    "memfd_create": (STRING, HEX),
    "membarrier": (INT, HEX, INT),
    "process_vm_readv": (INT, PTR, UINT, PTR, UINT, HEX),
    "process_vm_writev": (INT, IOVEC, UINT, PTR, UINT, HEX),
    "rt_sigaction": (SIGNAL, SIGACTION, PTR, UINT),
    "rt_sigprocmask": (SIGMASK_HOW, SIGSET, PTR, UINT),
    "rt_sigreturn": (),
    "ioctl": (FD, IOCTL_CMD, HEX),
    "pread64": (FD, READ_BUF_OUT, UINT, INT),
    "pwrite64": (FD, WRITE_BUF, UINT, INT),
    "readv": (FD, READ_IOVEC_OUT, INT),
    "writev": (FD, IOVEC, INT),
    "access": (PATH, OCT),
    "pipe": (PTR,),
    "sched_yield": (),
    "dup": (FD,),
    "dup2": (FD, FD),
    "pause": (),
    "nanosleep": (TIMESPEC, PTR),
    "getpid": (),
    "clone": (CLONE_FLAGS, HEX, PTR, PTR, HEX),
    "fork": (),
    "vfork": (),
    "execve": (PATH, STRING_VECTOR, STRING_VECTOR),
    "exit": (INT,),
    "wait4": (INT, PTR, HEX, PTR),
    "kill": (INT, SIGNAL),
    "uname": (UTSNAME_OUT,),
    "fcntl": (FD, INT, HEX),
    "getcwd": (READ_BUF_OUT, UINT),
    "chdir": (PATH,),
    "fchdir": (FD,),
    "mkdir": (PATH, OCT),
    "rmdir": (PATH,),
    "unlink": (PATH,),
    "readlink": (PATH, READ_BUF_OUT, UINT),
    "umask": (OCT,),
    "getrlimit": (RLIMIT, PTR),
    "getuid": (),
    "getgid": (),
    "setuid": (INT,),
    "setgid": (INT,),
    "geteuid": (),
    "getegid": (),
    "setpgid": (INT, INT),
    "getppid": (),
    "getpgrp": (),
    "setsid": (),
    "getpgid": (INT,),
    "getsid": (INT,),
    "sigaltstack": (PTR, PTR),
    "arch_prctl": (ARCH_PRCTL_CODE, HEX),
    "prctl": (INT, HEX, HEX, HEX, HEX),
    "gettid": (),
    "tkill": (INT, SIGNAL),
    "futex": (HEX, FUTEX_OP, INT, PTR, HEX, INT),
    "set_tid_address": (HEX,),
    "clock_gettime": (CLOCK_ID, TIMESPEC_OUT),
    "clock_getres": (CLOCK_ID, TIMESPEC_OUT),
    "clock_nanosleep": (CLOCK_ID, INT, TIMESPEC, PTR),
    "exit_group": (INT,),
    "tgkill": (INT, INT, SIGNAL),
    "openat": (DIRFD, PATH, OPEN_FLAGS, OCT),
    "mkdirat": (DIRFD, PATH, OCT),
    "newfstatat": (DIRFD, PATH, STAT_OUT, AT_FLAGS),
    "unlinkat": (DIRFD, PATH, HEX),
    "readlinkat": (DIRFD, PATH, READ_BUF_OUT, UINT),
    "faccessat": (DIRFD, PATH, OCT),
    "faccessat2": (DIRFD, PATH, OCT, AT_FLAGS),
    "set_robust_list": (HEX, UINT),
    "dup3": (FD, FD, OPEN_FLAGS),
    "pipe2": (PTR, OPEN_FLAGS),
    "prlimit64": (INT, RLIMIT, PTR, PTR),
    "getrandom": (READ_BUF_OUT, UINT, HEX),
    "execveat": (DIRFD, PATH, STRING_VECTOR, STRING_VECTOR, AT_FLAGS),
    "rseq": (HEX, UINT, HEX, HEX),
    # Processes, identity and scheduling.
    "clone3": (PTR, UINT),
    "waitid": (INT, INT, PTR, HEX, PTR),
    "unshare": (CLONE_FLAGS,),
    "pidfd_open": (INT, HEX),
    "pidfd_send_signal": (FD, SIGNAL, PTR, HEX),
    "pidfd_getfd": (FD, FD, HEX),
    "setreuid": (INT, INT),
    "setregid": (INT, INT),
    "setresuid": (INT, INT, INT),
    "setresgid": (INT, INT, INT),
    "setfsuid": (INT,),
    "setfsgid": (INT,),
    "setgroups": (INT, PTR),
    "getgroups": (INT, PTR),
    "capget": (PTR, PTR),
    "capset": (PTR, PTR),
    "setrlimit": (RLIMIT, PTR),
    "getrusage": (INT, PTR),
    "times": (PTR,),
    "sysinfo": (PTR,),
    "personality": (HEX,),
    "getpriority": (INT, INT),
    "setpriority": (INT, INT, INT),
    "sched_setaffinity": (INT, UINT, PTR),
    "sched_getaffinity": (INT, UINT, PTR),
    "sched_setscheduler": (INT, INT, PTR),
    "sched_getscheduler": (INT,),
    "sched_setparam": (INT, PTR),
    "sched_getparam": (INT, PTR),
    "sched_get_priority_max": (INT,),
    "sched_get_priority_min": (INT,),
    "sched_rr_get_interval": (INT, PTR),
    "getcpu": (PTR, PTR, PTR),
    "sethostname": (STRING, INT),
    "setdomainname": (STRING, INT),
}
