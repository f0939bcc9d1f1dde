"""Signal numbers, actions and structures (include/uapi/asm-generic/signal.h,
arch/x86/include/uapi/asm/signal.h, include/uapi/asm-generic/siginfo.h)."""

SIGHUP = 1
SIGINT = 2
SIGQUIT = 3
SIGILL = 4
SIGTRAP = 5
SIGABRT = 6
SIGBUS = 7
SIGFPE = 8
SIGKILL = 9
SIGUSR1 = 10
SIGSEGV = 11
SIGUSR2 = 12
SIGPIPE = 13
SIGALRM = 14
SIGTERM = 15
SIGSTKFLT = 16
SIGCHLD = 17
SIGCONT = 18
SIGSTOP = 19
SIGTSTP = 20
SIGTTIN = 21
SIGTTOU = 22
SIGURG = 23
SIGXCPU = 24
SIGXFSZ = 25
SIGVTALRM = 26
SIGPROF = 27
SIGWINCH = 28
SIGIO = 29
SIGPWR = 30
SIGSYS = 31
SIGRTMIN = 32
SIGRTMAX = 64
NSIG = 64

NAMES: dict[int, str] = {
    SIGHUP: "SIGHUP",
    SIGINT: "SIGINT",
    SIGQUIT: "SIGQUIT",
    SIGILL: "SIGILL",
    SIGTRAP: "SIGTRAP",
    SIGABRT: "SIGABRT",
    SIGBUS: "SIGBUS",
    SIGFPE: "SIGFPE",
    SIGKILL: "SIGKILL",
    SIGUSR1: "SIGUSR1",
    SIGSEGV: "SIGSEGV",
    SIGUSR2: "SIGUSR2",
    SIGPIPE: "SIGPIPE",
    SIGALRM: "SIGALRM",
    SIGTERM: "SIGTERM",
    SIGSTKFLT: "SIGSTKFLT",
    SIGCHLD: "SIGCHLD",
    SIGCONT: "SIGCONT",
    SIGSTOP: "SIGSTOP",
    SIGTSTP: "SIGTSTP",
    SIGTTIN: "SIGTTIN",
    SIGTTOU: "SIGTTOU",
    SIGURG: "SIGURG",
    SIGXCPU: "SIGXCPU",
    SIGXFSZ: "SIGXFSZ",
    SIGVTALRM: "SIGVTALRM",
    SIGPROF: "SIGPROF",
    SIGWINCH: "SIGWINCH",
    SIGIO: "SIGIO",
    SIGPWR: "SIGPWR",
    SIGSYS: "SIGSYS",
}


def signal_name(signo: int) -> str:
    """Returns the name of a signal, SIGRTMIN+n for real-time ones."""
    if signo in NAMES:
        return NAMES[signo]
    if SIGRTMIN <= signo <= SIGRTMAX:
        return f"SIGRTMIN+{signo - SIGRTMIN}" if signo != SIGRTMIN else "SIGRTMIN"
    return str(signo)


def sigmask(signo: int) -> int:
    """Returns the bit of signo in a 64-bit signal set."""
    return 1 << (signo - 1)


# Signals that cannot be caught, blocked or ignored.
UNBLOCKABLE_MASK = sigmask(SIGKILL) | sigmask(SIGSTOP)
FULL_MASK = (1 << NSIG) - 1

# Synchronous signals that are delivered before others, as kernel/signal.c's
# SYNCHRONOUS_MASK.
SYNCHRONOUS_MASK = (
    sigmask(SIGSEGV)
    | sigmask(SIGBUS)
    | sigmask(SIGILL)
    | sigmask(SIGTRAP)
    | sigmask(SIGFPE)
    | sigmask(SIGSYS)
)

# sa_handler values.
SIG_DFL = 0
SIG_IGN = 1

# sa_flags.
SA_NOCLDSTOP = 0x00000001
SA_NOCLDWAIT = 0x00000002
SA_SIGINFO = 0x00000004
SA_UNSUPPORTED = 0x00000400
SA_EXPOSE_TAGBITS = 0x00000800
SA_RESTORER = 0x04000000
SA_ONSTACK = 0x08000000
SA_RESTART = 0x10000000
SA_NODEFER = 0x40000000
SA_RESETHAND = 0x80000000

# rt_sigprocmask how.
SIG_BLOCK = 0
SIG_UNBLOCK = 1
SIG_SETMASK = 2

# sigaltstack flags.
SS_ONSTACK = 1
SS_DISABLE = 2
SS_AUTODISARM = 1 << 31
# Flags that may be or-ed into a sigaltstack mode.
SS_FLAG_BITS = SS_AUTODISARM
MINSIGSTKSZ = 2048

# si_code values.
SI_USER = 0
SI_KERNEL = 0x80
SI_QUEUE = -1
SI_TIMER = -2
SI_MESGQ = -3
SI_ASYNCIO = -4
SI_SIGIO = -5
SI_TKILL = -6
SEGV_MAPERR = 1
SEGV_ACCERR = 2
SEGV_PKUERR = 4
BUS_ADRALN = 1
BUS_ADRERR = 2
BUS_OBJERR = 3
CLD_EXITED = 1
CLD_KILLED = 2
CLD_DUMPED = 3
CLD_TRAPPED = 4
CLD_STOPPED = 5
CLD_CONTINUED = 6
TRAP_BRKPT = 1
TRAP_TRACE = 2
SYS_SECCOMP = 1

# Default actions (kernel/signal.c sig_kernel_* classes).
ACTION_TERM = 0
ACTION_CORE = 1
ACTION_IGNORE = 2
ACTION_STOP = 3
ACTION_CONTINUE = 4

# The stop signals, whose default action is a group stop (SIG_KERNEL_STOP_MASK).
STOP_MASK = sigmask(SIGSTOP) | sigmask(SIGTSTP) | sigmask(SIGTTIN) | sigmask(SIGTTOU)

_CORE = (SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGXCPU)
_CORE += (SIGXFSZ, SIGSYS)
_IGNORE = (SIGCHLD, SIGURG, SIGWINCH)
_STOP = (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU)


def default_action(signo: int) -> int:
    """Returns the ACTION_* a signal has when its handler is SIG_DFL."""
    if signo in _CORE:
        return ACTION_CORE
    if signo in _IGNORE:
        return ACTION_IGNORE
    if signo in _STOP:
        return ACTION_STOP
    if signo == SIGCONT:
        return ACTION_CONTINUE
    return ACTION_TERM


SIGSET_SIZE = 8
SIGINFO_SIZE = 128
