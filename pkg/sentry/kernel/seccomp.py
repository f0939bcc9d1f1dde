"""seccomp for the application: classic BPF filters run on its own system
calls, as kernel/seccomp.c does.

This is the application's seccomp, emulated by the sentry, and has nothing
to do with the filters the platform or the sentry install on the host.

A task in SECCOMP_MODE_STRICT may only call read, write, exit and
rt_sigreturn; anything else kills the thread with SIGKILL. In
SECCOMP_MODE_FILTER every filter of the task's chain (newest first) runs on
a struct seccomp_data; the action that wins is the one of highest
precedence (the lowest action value as a signed number, KILL_PROCESS first,
ALLOW last), the newest filter winning ties. Filters are immutable and
chained through `prev`, so fork and TSYNC share them.

The dispatcher calls check_syscall before it looks the call up in the
table.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pkg.abi.linux import errno
from pkg.abi.linux import ptrace as PT
from pkg.abi.linux import seccomp as SC
from pkg.abi.linux import signal as S
from pkg.abi.linux import sysno as N
from pkg.errors.syscall_error import SyscallError
from pkg.platform import platform as P
from pkg.sentry.kernel import ptrace
from pkg.sentry.kernel.signals import SignalInfo
from pkg.sentry.kernel.task_signals import force_signal, recalc_interrupted_locked

if TYPE_CHECKING:
    from pkg.sentry.kernel.task import Task

log = logging.getLogger(__name__)

_MASK32 = 0xFFFFFFFF
_ERRNO_MAX = 4095
_MASK64 = (1 << 64) - 1

# System calls allowed in SECCOMP_MODE_STRICT (mode1_syscalls).
STRICT_ALLOWED = frozenset((N.SYS_read, N.SYS_write, N.SYS_exit, N.SYS_rt_sigreturn))

# Actions a filter may return, for SECCOMP_GET_ACTION_AVAIL. Unlike Linux,
# SECCOMP_RET_USER_NOTIF is not offered: there are no listeners.
AVAILABLE_ACTIONS = frozenset(
    (
        SC.SECCOMP_RET_KILL_PROCESS,
        SC.SECCOMP_RET_KILL_THREAD,
        SC.SECCOMP_RET_TRAP,
        SC.SECCOMP_RET_ERRNO,
        SC.SECCOMP_RET_TRACE,
        SC.SECCOMP_RET_LOG,
        SC.SECCOMP_RET_ALLOW,
    )
)

_INSN = struct.Struct("<HBBI")
_DATA = struct.Struct("<iIQ6Q")

_LD, _LDX, _ST, _STX = SC.BPF_LD, SC.BPF_LDX, SC.BPF_ST, SC.BPF_STX
_ALU, _JMP, _RET, _MISC = SC.BPF_ALU, SC.BPF_JMP, SC.BPF_RET, SC.BPF_MISC
_K, _X = SC.BPF_K, SC.BPF_X

# Internal opcodes of the interpreter (after validation and conversion).
(
    _OP_LD_ABS,
    _OP_LD_IMM,
    _OP_LDX_IMM,
    _OP_LD_MEM,
    _OP_LDX_MEM,
    _OP_ST,
    _OP_STX,
    _OP_TAX,
    _OP_TXA,
    _OP_RET_K,
    _OP_RET_A,
    _OP_JA,
    _OP_JEQ_K,
    _OP_JEQ_X,
    _OP_JGT_K,
    _OP_JGT_X,
    _OP_JGE_K,
    _OP_JGE_X,
    _OP_JSET_K,
    _OP_JSET_X,
    _OP_ALU_K,
    _OP_ALU_X,
    _OP_NEG,
) = range(23)

_ALU_OPS = (
    SC.BPF_ADD,
    SC.BPF_SUB,
    SC.BPF_MUL,
    SC.BPF_DIV,
    SC.BPF_AND,
    SC.BPF_OR,
    SC.BPF_XOR,
    SC.BPF_LSH,
    SC.BPF_RSH,
)
_JMP_OPS = {
    SC.BPF_JEQ: (_OP_JEQ_K, _OP_JEQ_X),
    SC.BPF_JGT: (_OP_JGT_K, _OP_JGT_X),
    SC.BPF_JGE: (_OP_JGE_K, _OP_JGE_X),
    SC.BPF_JSET: (_OP_JSET_K, _OP_JSET_X),
}

Insn = tuple[int, int, int, int]


def compile_filter(raw: bytes) -> tuple[Insn, ...]:
    """Validates a classic BPF program for seccomp and converts it to the
    interpreter's form (bpf_check_classic, seccomp_check_filter).

    Args:
        raw: the struct sock_filter array.

    Raises:
        SyscallError: EINVAL for an empty or too long program, an
            instruction seccomp does not allow, a jump out of the program,
            a read of an unwritten scratch word, or no final return.
    """
    n = len(raw) // _INSN.size
    if n == 0 or n > SC.BPF_MAXINSNS:
        raise SyscallError(errno.EINVAL)
    out: list[Insn] = []
    for pc in range(n):
        code, jt, jf, k = _INSN.unpack_from(raw, pc * _INSN.size)
        out.append(_convert(pc, n, code, jt, jf, k))
    if out[-1][0] not in (_OP_RET_K, _OP_RET_A):
        raise SyscallError(errno.EINVAL)
    _check_scratch(out)
    return tuple(out)


def _convert(pc: int, n: int, code: int, jt: int, jf: int, k: int) -> Insn:
    cls = code & 0x07
    if code == _LD | SC.BPF_W | SC.BPF_ABS:
        # 32-bit aligned loads within struct seccomp_data only.
        if k >= SC.SECCOMP_DATA_SIZE or k & 3:
            raise SyscallError(errno.EINVAL)
        return (_OP_LD_ABS, 0, 0, k // 4)
    if code == _LD | SC.BPF_W | SC.BPF_LEN:
        return (_OP_LD_IMM, 0, 0, SC.SECCOMP_DATA_SIZE)
    if code == _LDX | SC.BPF_W | SC.BPF_LEN:
        return (_OP_LDX_IMM, 0, 0, SC.SECCOMP_DATA_SIZE)
    if code == _LD | SC.BPF_IMM:
        return (_OP_LD_IMM, 0, 0, k)
    if code == _LDX | SC.BPF_IMM:
        return (_OP_LDX_IMM, 0, 0, k)
    if code in (_LD | SC.BPF_MEM, _LDX | SC.BPF_MEM, _ST, _STX):
        if k >= SC.BPF_MEMWORDS:
            raise SyscallError(errno.EINVAL)
        op = {
            _LD | SC.BPF_MEM: _OP_LD_MEM,
            _LDX | SC.BPF_MEM: _OP_LDX_MEM,
            _ST: _OP_ST,
            _STX: _OP_STX,
        }[code]
        return (op, 0, 0, k)
    if code == _MISC | SC.BPF_TAX:
        return (_OP_TAX, 0, 0, 0)
    if code == _MISC | SC.BPF_TXA:
        return (_OP_TXA, 0, 0, 0)
    if code == _RET | _K:
        return (_OP_RET_K, 0, 0, k)
    if code == _RET | SC.BPF_A:
        return (_OP_RET_A, 0, 0, 0)
    if cls == _ALU:
        op = code & 0xF0
        src = code & 0x08
        if code == _ALU | SC.BPF_NEG:
            return (_OP_NEG, 0, 0, 0)
        if op not in _ALU_OPS or code != _ALU | op | src:
            raise SyscallError(errno.EINVAL)
        if src == _K:
            if op == SC.BPF_DIV and k == 0:
                raise SyscallError(errno.EINVAL)
            if op in (SC.BPF_LSH, SC.BPF_RSH) and k >= 32:
                raise SyscallError(errno.EINVAL)
            return (_OP_ALU_K, op, 0, k)
        return (_OP_ALU_X, op, 0, 0)
    if cls == _JMP:
        op = code & 0xF0
        if code == _JMP | SC.BPF_JA:
            if k >= n - 1 - pc:
                raise SyscallError(errno.EINVAL)
            return (_OP_JA, 0, 0, k)
        ops = _JMP_OPS.get(op)
        if ops is None or code != _JMP | op | (code & 0x08):
            raise SyscallError(errno.EINVAL)
        if pc + jt + 1 >= n or pc + jf + 1 >= n:
            raise SyscallError(errno.EINVAL)
        return (ops[1] if code & 0x08 else ops[0], jt, jf, k)
    raise SyscallError(errno.EINVAL)


def _check_scratch(prog: list[Insn]) -> None:
    """Rejects a program that may read a scratch word before writing it
    (check_load_and_stores)."""
    n = len(prog)
    all_valid = (1 << SC.BPF_MEMWORDS) - 1
    masks = [all_valid] * n
    valid = 0
    for pc, (op, jt, jf, k) in enumerate(prog):
        valid &= masks[pc]
        if op in (_OP_ST, _OP_STX):
            valid |= 1 << k
        elif op in (_OP_LD_MEM, _OP_LDX_MEM):
            if not valid & (1 << k):
                raise SyscallError(errno.EINVAL)
        elif op == _OP_JA:
            masks[pc + 1 + k] &= valid
            valid = all_valid
        elif _OP_JEQ_K <= op <= _OP_JSET_X:
            masks[pc + 1 + jt] &= valid
            masks[pc + 1 + jf] &= valid
            valid = all_valid


def run_filter(prog: tuple[Insn, ...], data: tuple[int, ...]) -> int:
    """Runs a compiled program on seccomp_data given as 16 32-bit words and
    returns its 32-bit result."""
    a = x = 0
    mem = [0] * SC.BPF_MEMWORDS
    pc = 0
    while True:
        op, jt, jf, k = prog[pc]
        pc += 1
        if op == _OP_LD_ABS:
            a = data[k]
        elif op == _OP_JEQ_K:
            pc += jt if a == k else jf
        elif op == _OP_RET_K:
            return k
        elif op == _OP_JGE_K:
            pc += jt if a >= k else jf
        elif op == _OP_JGT_K:
            pc += jt if a > k else jf
        elif op == _OP_JSET_K:
            pc += jt if a & k else jf
        elif op == _OP_ALU_K:
            a = _alu(jt, a, k)
        elif op == _OP_JA:
            pc += k
        elif op == _OP_RET_A:
            return a
        elif op == _OP_LD_IMM:
            a = k
        elif op == _OP_LDX_IMM:
            x = k
        elif op == _OP_LD_MEM:
            a = mem[k]
        elif op == _OP_LDX_MEM:
            x = mem[k]
        elif op == _OP_ST:
            mem[k] = a
        elif op == _OP_STX:
            mem[k] = x
        elif op == _OP_TAX:
            x = a
        elif op == _OP_TXA:
            a = x
        elif op == _OP_JEQ_X:
            pc += jt if a == x else jf
        elif op == _OP_JGT_X:
            pc += jt if a > x else jf
        elif op == _OP_JGE_X:
            pc += jt if a >= x else jf
        elif op == _OP_JSET_X:
            pc += jt if a & x else jf
        elif op == _OP_ALU_X:
            if jt == SC.BPF_DIV and x == 0:
                # Division by zero ends the program with 0, as Linux's
                # conversion of classic BPF does.
                return 0
            a = _alu(jt, a, x)
        else:  # _OP_NEG
            a = -a & _MASK32


def _alu(op: int, a: int, v: int) -> int:
    if op == SC.BPF_ADD:
        return (a + v) & _MASK32
    if op == SC.BPF_SUB:
        return (a - v) & _MASK32
    if op == SC.BPF_AND:
        return a & v
    if op == SC.BPF_OR:
        return a | v
    if op == SC.BPF_XOR:
        return a ^ v
    if op == SC.BPF_MUL:
        return (a * v) & _MASK32
    if op == SC.BPF_DIV:
        return a // v
    if op == SC.BPF_LSH:
        return (a << (v & 31)) & _MASK32
    return a >> (v & 31)


def fixed_result(prog: tuple[Insn, ...], nr: int, arch: int) -> int | None:
    """Runs a program knowing only the call number and the architecture
    (words 0 and 1 of seccomp_data): returns its result if the path taken
    depends on nothing else (not the instruction pointer, not the
    arguments), else None. Jumps only go forward, so this ends."""
    a: int | None = 0
    x: int | None = 0
    mem: list[int | None] = [None] * SC.BPF_MEMWORDS
    pc = 0
    while True:
        op, jt, jf, k = prog[pc]
        pc += 1
        if op == _OP_LD_ABS:
            a = nr if k == 0 else arch if k == 1 else None
        elif op == _OP_RET_K:
            return k
        elif op == _OP_RET_A:
            return a
        elif op == _OP_JA:
            pc += k
        elif _OP_JEQ_K <= op <= _OP_JSET_X:
            v = x if op in (_OP_JEQ_X, _OP_JGT_X, _OP_JGE_X, _OP_JSET_X) else k
            if a is None or v is None:
                return None
            if op in (_OP_JEQ_K, _OP_JEQ_X):
                taken = a == v
            elif op in (_OP_JGT_K, _OP_JGT_X):
                taken = a > v
            elif op in (_OP_JGE_K, _OP_JGE_X):
                taken = a >= v
            else:
                taken = bool(a & v)
            pc += jt if taken else jf
        elif op == _OP_LD_IMM:
            a = k
        elif op == _OP_LDX_IMM:
            x = k
        elif op == _OP_LD_MEM:
            a = mem[k]
        elif op == _OP_LDX_MEM:
            x = mem[k]
        elif op == _OP_ST:
            mem[k] = a
        elif op == _OP_STX:
            mem[k] = x
        elif op == _OP_TAX:
            x = a
        elif op == _OP_TXA:
            a = x
        elif op == _OP_ALU_K:
            a = None if a is None else _alu(jt, a, k)
        elif op == _OP_ALU_X:
            if x == 0 and jt == SC.BPF_DIV:
                return 0
            a = None if a is None or x is None else _alu(jt, a, x)
        else:  # _OP_NEG
            a = None if a is None else -a & _MASK32


@dataclass(frozen=True, slots=True)
class SeccompFilter:
    """SeccompFilter is one installed filter and the ones before it.

    `fixed` caches, per (call number, architecture), the filter's result
    when it depends on nothing else (fixed_result), or None: most calls of
    a container's profile are allowed or refused whatever their arguments,
    and a dictionary look-up is much cheaper than interpreting the
    program."""

    prog: tuple[Insn, ...]
    prev: SeccompFilter | None
    # SECCOMP_FILTER_FLAG_LOG: log the actions it takes but ALLOW.
    log: bool = False
    fixed: dict[tuple[int, int], int | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    def length(self) -> int:
        """Instructions of the whole chain as Linux counts them: 4 extra per
        filter."""
        total = 0
        f: SeccompFilter | None = self
        while f is not None:
            total += len(f.prog) + 4
            f = f.prev
        return total

    def descends_from(self, other: SeccompFilter | None) -> bool:
        """Reports whether other is this filter or one of its ancestors."""
        if other is None:
            return True
        f: SeccompFilter | None = self
        while f is not None:
            if f is other:
                return True
            f = f.prev
        return False


def _action_rank(ret: int) -> int:
    # ACTION_ONLY as a signed 32-bit number: lower means higher precedence.
    action = ret & SC.SECCOMP_RET_ACTION_FULL
    return action - (1 << 32) if action & 0x80000000 else action


def evaluate(chain: SeccompFilter, data: tuple[int, ...]) -> tuple[int, SeccompFilter]:
    """Runs every filter of a chain; returns the winning result and the
    filter that returned it (seccomp_run_filters)."""
    ret = SC.SECCOMP_RET_ALLOW
    match = chain
    rank = _action_rank(ret)
    f: SeccompFilter | None = chain
    key = (data[0], data[1])
    while f is not None:
        try:
            cur = f.fixed[key]
        except KeyError:
            cur = f.fixed[key] = fixed_result(f.prog, *key)
        if cur is None:
            cur = run_filter(f.prog, data)
        cur_rank = _action_rank(cur)
        if cur_rank < rank:
            ret, rank, match = cur, cur_rank, f
        f = f.prev
    return ret, match


def seccomp_data(t: Task, sysno: int) -> tuple[int, ...]:
    """Returns struct seccomp_data for the call t stopped at, as 16 words."""
    regs = t.state.regs
    return make_data(
        sysno,
        regs[P.RIP],
        (regs[P.RDI], regs[P.RSI], regs[P.RDX], regs[P.R10], regs[P.R8], regs[P.R9]),
    )


def make_data(sysno: int, ip: int, args: tuple[int, ...]) -> tuple[int, ...]:
    """Returns struct seccomp_data for an x86-64 call, as 16 words."""
    raw = _DATA.pack(sysno, SC.AUDIT_ARCH_X86_64, ip, *args)
    return struct.unpack("<16I", raw)


def check_syscall(t: Task, sysno: int, recheck: bool = False) -> int | None:
    """Applies t's seccomp mode to the call it stopped at (__secure_computing).

    Args:
        t: the task, on its own thread.
        sysno: the call's number.
        recheck: the filters run again on a call a tracer saw at
            PTRACE_EVENT_SECCOMP; SECCOMP_RET_TRACE then allows it.

    Returns:
        None to run the call; otherwise the value for the return register,
        the call being skipped (and the task maybe signalled or exiting).
    """
    if t.seccomp_mode == SC.SECCOMP_MODE_STRICT:
        if sysno in STRICT_ALLOWED:
            return None
        log.debug("seccomp: tid=%d strict mode kill on sysno=%d", t.tid, sysno)
        _exit_thread(t, S.SIGKILL)
        return -errno.ENOSYS
    chain = t.seccomp_filter
    if chain is None:
        return None
    ret, match = evaluate(chain, seccomp_data(t, sysno))
    action = ret & SC.SECCOMP_RET_ACTION_FULL
    data = ret & SC.SECCOMP_RET_DATA
    if action == SC.SECCOMP_RET_ALLOW:
        return None
    if action == SC.SECCOMP_RET_LOG:
        log.debug("seccomp: tid=%d logged sysno=%d", t.tid, sysno)
        return None
    if match.log:
        log.info("seccomp: tid=%d sysno=%d action=%#x", t.tid, sysno, action)
    if action == SC.SECCOMP_RET_ERRNO:
        return -min(data, _ERRNO_MAX)
    if action == SC.SECCOMP_RET_TRAP:
        # The call is rolled back: the handler sees rax = the call number.
        force_signal(t, _sigsys(t, sysno, data))
        return sysno
    if action == SC.SECCOMP_RET_TRACE:
        return _trace(t, data, recheck)
    if action == SC.SECCOMP_RET_USER_NOTIF:
        # TODO(#5): no listener can exist: the call fails.
        return -errno.ENOSYS
    # KILL_THREAD, KILL_PROCESS, and any unknown action.
    log.debug("seccomp: tid=%d kill (action %#x) on sysno=%d", t.tid, action, sysno)
    with t.tg.signal_handlers.mu:
        last = len([task for task in t.tg.tasks if not task.exiting]) <= 1
    if action == SC.SECCOMP_RET_KILL_THREAD and not last:
        _exit_thread(t, S.SIGSYS)
    else:
        force_signal(t, _sigsys(t, sysno, data), force_default=True)
    return -errno.ENOSYS


def _trace(t: Task, data: int, recheck: bool) -> int | None:
    """SECCOMP_RET_TRACE: a tracer with PTRACE_O_TRACESECCOMP sees the call
    at a PTRACE_EVENT_SECCOMP stop and may change or skip it (orig_rax -1);
    without one the call fails with ENOSYS."""
    if recheck:
        return None
    ps = t.ptrace
    if ps is None or not ps.options & PT.PTRACE_O_TRACESECCOMP:
        return -errno.ENOSYS
    regs = t.state.regs
    regs[P.RAX] = -errno.ENOSYS & _MASK64
    ptrace.event_stop(t, PT.PTRACE_EVENT_SECCOMP, data)
    if t.exiting or t.tg.exiting:
        return regs[P.RAX]
    sysno = regs[P.ORIG_RAX]
    if sysno == _MASK64:
        return regs[P.RAX]
    # The filters see what the tracer left, as since Linux 4.8.
    return check_syscall(t, sysno, recheck=True)


def _sigsys(t: Task, sysno: int, data: int) -> SignalInfo:
    return SignalInfo(
        signo=S.SIGSYS,
        code=S.SYS_SECCOMP,
        errno=data,
        addr=t.state.regs[P.RIP],
        syscall=sysno,
        arch=SC.AUDIT_ARCH_X86_64,
    )


def _exit_thread(t: Task, signo: int) -> None:
    # do_exit(signo): only this thread, with the signal as its exit code.
    with t.tg.signal_handlers.mu:
        t.exit_status = signo
        t.exiting = True
        recalc_interrupted_locked(t)


def set_mode_strict(t: Task) -> None:
    """Enters SECCOMP_MODE_STRICT.

    Raises:
        SyscallError: EINVAL if t already has filters.
    """
    with t.tg.signal_handlers.mu:
        if t.seccomp_mode not in (SC.SECCOMP_MODE_DISABLED, SC.SECCOMP_MODE_STRICT):
            raise SyscallError(errno.EINVAL)
        t.seccomp_mode = SC.SECCOMP_MODE_STRICT


def attach_filter(t: Task, prog: tuple[Insn, ...], flags: int) -> int:
    """Installs a compiled filter on t, and with TSYNC on its siblings
    (seccomp_attach_filter).

    Returns:
        0, or with TSYNC the id of a thread that cannot be synchronised (a
        thread whose filters are not an ancestor of t's).

    Raises:
        SyscallError: EINVAL in strict mode, ENOMEM past MAX_INSNS_PER_PATH, ESRCH for a
            failed TSYNC with SECCOMP_FILTER_FLAG_TSYNC_ESRCH.
    """
    with t.tg.signal_handlers.mu:
        if t.seccomp_mode == SC.SECCOMP_MODE_STRICT:
            raise SyscallError(errno.EINVAL)
        new = SeccompFilter(
            prog, t.seccomp_filter, bool(flags & SC.SECCOMP_FILTER_FLAG_LOG)
        )
        if new.length() - 4 > SC.MAX_INSNS_PER_PATH:
            raise SyscallError(errno.ENOMEM)
        if flags & SC.SECCOMP_FILTER_FLAG_TSYNC:
            for other in t.tg.tasks:
                if other is t or other.exiting:
                    continue
                ok = other.seccomp_mode == SC.SECCOMP_MODE_DISABLED or (
                    other.seccomp_mode == SC.SECCOMP_MODE_FILTER
                    and (t.seccomp_filter is not None)
                    and t.seccomp_filter.descends_from(other.seccomp_filter)
                )
                if not ok:
                    if flags & SC.SECCOMP_FILTER_FLAG_TSYNC_ESRCH:
                        raise SyscallError(errno.ESRCH)
                    return other.tid
        t.seccomp_filter = new
        t.seccomp_mode = SC.SECCOMP_MODE_FILTER
        if flags & SC.SECCOMP_FILTER_FLAG_TSYNC:
            for other in t.tg.tasks:
                if other is t or other.exiting:
                    continue
                other.seccomp_filter = new
                other.seccomp_mode = SC.SECCOMP_MODE_FILTER
                if t.creds.no_new_privs and not other.creds.no_new_privs:
                    other.creds = other.creds.with_changes(no_new_privs=True)
    return 0
