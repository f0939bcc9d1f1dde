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
# Readiness calls (decoded in events.py).
POLLFDS = "pollfds"  # pollfd array whose count is the next argument
FD_SET = "fd_set"  # fd_set of select, sized by the first argument
TIMEVAL = "timeval"
EPOLL_CTL_OP = "epoll_ctl_op"
EPOLL_EVENT = "epoll_event"
EPOLL_EVENTS_OUT = "epoll_events_out"  # filled up to the return value

# name: argument kinds in order. Calls not listed show six hex arguments.
SYSCALL_FORMATS: dict[str, tuple[str, ...]] = {
    "read": (FD, READ_BUF_OUT, UINT),
    "write": (FD, WRITE_BUF, UINT),
    "open": (PATH, OPEN_FLAGS, OCT),
    "close": (FD,),
    "stat": (PATH, STAT_OUT),
    "fstat": (FD, STAT_OUT),
    "lstat": (PATH, STAT_OUT),
    "poll": (POLLFDS, UINT, INT),
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
    "rt_sigpending": (PTR, UINT),
    "rt_sigtimedwait": (SIGSET, PTR, TIMESPEC, UINT),
    "rt_sigqueueinfo": (INT, SIGNAL, PTR),
    "rt_sigsuspend": (SIGSET, UINT),
    "rt_tgsigqueueinfo": (INT, INT, SIGNAL, PTR),
    "getitimer": (INT, PTR),
    "setitimer": (INT, PTR, PTR),
    "alarm": (UINT,),
    "gettimeofday": (PTR, PTR),
    "time": (PTR,),
    "restart_syscall": (),
    "timer_create": (CLOCK_ID, PTR, PTR),
    "timer_settime": (INT, HEX, PTR, PTR),
    "timer_gettime": (INT, PTR),
    "timer_getoverrun": (INT,),
    "timer_delete": (INT,),
    "clock_settime": (CLOCK_ID, TIMESPEC),
    "seccomp": (INT, HEX, PTR),
    "futex_waitv": (PTR, UINT, HEX, TIMESPEC, CLOCK_ID),
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
    "select": (INT, FD_SET, FD_SET, FD_SET, TIMEVAL),
    "pselect6": (INT, FD_SET, FD_SET, FD_SET, TIMESPEC, PTR),
    "ppoll": (POLLFDS, UINT, TIMESPEC, SIGSET, UINT),
    "epoll_create": (INT,),
    "epoll_create1": (HEX,),
    "epoll_ctl": (FD, EPOLL_CTL_OP, FD, EPOLL_EVENT),
    "epoll_wait": (FD, EPOLL_EVENTS_OUT, INT, INT),
    "epoll_pwait": (FD, EPOLL_EVENTS_OUT, INT, INT, SIGSET, UINT),
    "epoll_pwait2": (FD, EPOLL_EVENTS_OUT, INT, TIMESPEC, SIGSET, UINT),
    "eventfd": (UINT,),
    "eventfd2": (UINT, HEX),
    "signalfd": (FD, SIGSET, UINT),
    "signalfd4": (FD, SIGSET, UINT, HEX),
    "timerfd_create": (CLOCK_ID, HEX),
    "timerfd_settime": (FD, HEX, PTR, PTR),
    "timerfd_gettime": (FD, PTR),
    # Files (#5).
    "creat": (PATH, OCT),
    "openat2": (DIRFD, PATH, PTR, UINT),
    "close_range": (UINT, UINT, HEX),
    "statx": (DIRFD, PATH, AT_FLAGS, HEX, PTR),
    "statfs": (PATH, PTR),
    "fstatfs": (FD, PTR),
    "mknod": (PATH, OCT, HEX),
    "mknodat": (DIRFD, PATH, OCT, HEX),
    "link": (PATH, PATH),
    "linkat": (DIRFD, PATH, DIRFD, PATH, AT_FLAGS),
    "symlink": (PATH, PATH),
    "symlinkat": (PATH, DIRFD, PATH),
    "rename": (PATH, PATH),
    "renameat": (DIRFD, PATH, DIRFD, PATH),
    "renameat2": (DIRFD, PATH, DIRFD, PATH, HEX),
    "chmod": (PATH, OCT),
    "fchmod": (FD, OCT),
    "fchmodat": (DIRFD, PATH, OCT),
    "fchmodat2": (DIRFD, PATH, OCT, AT_FLAGS),
    "chown": (PATH, INT, INT),
    "fchown": (FD, INT, INT),
    "lchown": (PATH, INT, INT),
    "fchownat": (DIRFD, PATH, INT, INT, AT_FLAGS),
    "utime": (PATH, PTR),
    "utimes": (PATH, PTR),
    "futimesat": (DIRFD, PATH, PTR),
    "utimensat": (DIRFD, PATH, PTR, AT_FLAGS),
    "truncate": (PATH, INT),
    "ftruncate": (FD, INT),
    "chroot": (PATH,),
    "getdents": (FD, PTR, UINT),
    "getdents64": (FD, PTR, UINT),
    "flock": (FD, HEX),
    "fsync": (FD,),
    "fdatasync": (FD,),
    "sync": (),
    "syncfs": (FD,),
    "sync_file_range": (FD, INT, INT, HEX),
    "fallocate": (FD, HEX, INT, INT),
    "fadvise64": (FD, INT, INT, INT),
    "readahead": (FD, INT, UINT),
    "setxattr": (PATH, STRING, WRITE_BUF, UINT, HEX),
    "lsetxattr": (PATH, STRING, WRITE_BUF, UINT, HEX),
    "fsetxattr": (FD, STRING, WRITE_BUF, UINT, HEX),
    "getxattr": (PATH, STRING, PTR, UINT),
    "lgetxattr": (PATH, STRING, PTR, UINT),
    "fgetxattr": (FD, STRING, PTR, UINT),
    "listxattr": (PATH, PTR, UINT),
    "llistxattr": (PATH, PTR, UINT),
    "flistxattr": (FD, PTR, UINT),
    "removexattr": (PATH, STRING),
    "lremovexattr": (PATH, STRING),
    "fremovexattr": (FD, STRING),
    "sendfile": (FD, FD, PTR, UINT),
    "splice": (FD, PTR, FD, PTR, UINT, HEX),
    "tee": (FD, FD, UINT, HEX),
    "copy_file_range": (FD, PTR, FD, PTR, UINT, HEX),
    "mount": (STRING, PATH, STRING, HEX, PTR),
    "umount2": (PATH, HEX),
    "pivot_root": (PATH, PATH),
    "preadv": (FD, READ_IOVEC_OUT, INT, INT),
    "pwritev": (FD, IOVEC, INT, INT),
    "preadv2": (FD, READ_IOVEC_OUT, INT, INT, INT, HEX),
    "pwritev2": (FD, IOVEC, INT, INT, INT, HEX),
}
