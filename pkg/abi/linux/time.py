"""Clock ids and time structures (include/uapi/linux/time.h)."""

CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
CLOCK_PROCESS_CPUTIME_ID = 2
CLOCK_THREAD_CPUTIME_ID = 3
CLOCK_MONOTONIC_RAW = 4
CLOCK_REALTIME_COARSE = 5
CLOCK_MONOTONIC_COARSE = 6
CLOCK_BOOTTIME = 7
CLOCK_REALTIME_ALARM = 8
CLOCK_BOOTTIME_ALARM = 9
CLOCK_TAI = 11

TIMER_ABSTIME = 1

NSEC_PER_SEC = 1_000_000_000
NSEC_PER_USEC = 1_000
CLOCKS_PER_SEC = 100  # USER_HZ, the unit of times(2) and AT_CLKTCK.

# Timer resolutions: high-resolution timers, and the tick of the coarse
# clocks (CONFIG_HZ=250).
HRTIMER_RESOLUTION_NS = 1
TICK_NSEC = 4_000_000

# CPU-time clock ids (include/linux/posix-timers.h): a negative id encodes
# ~pid << 3 | which, with bit 2 set for a thread's clock.
CPUCLOCK_PROF = 0
CPUCLOCK_VIRT = 1
CPUCLOCK_SCHED = 2
CPUCLOCK_MAX = 3
CLOCKFD = CPUCLOCK_MAX
CPUCLOCK_PERTHREAD_MASK = 4
CPUCLOCK_CLOCK_MASK = 3


def make_process_cpuclock(pid: int, which: int) -> int:
    """Returns the clock id of a process's CPU-time clock."""
    return ((~pid) << 3) | which


def make_thread_cpuclock(tid: int, which: int) -> int:
    """Returns the clock id of a thread's CPU-time clock."""
    return make_process_cpuclock(tid, which | CPUCLOCK_PERTHREAD_MASK)


# setitimer(2) timers.
ITIMER_REAL = 0
ITIMER_VIRTUAL = 1
ITIMER_PROF = 2

# struct sigevent notification kinds (include/uapi/asm-generic/siginfo.h).
SIGEV_SIGNAL = 0
SIGEV_NONE = 1
SIGEV_THREAD = 2
SIGEV_THREAD_ID = 4
SIGEV_SIZE = 64

# The largest overrun count timer_getoverrun reports.
DELAYTIMER_MAX = 0x7FFFFFFF
