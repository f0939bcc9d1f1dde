"""System V IPC and POSIX message queue ABI (include/uapi/linux/ipc.h,
shm.h, sem.h, msg.h, mqueue.h)."""

from __future__ import annotations

import struct

# Keys and get flags.
IPC_PRIVATE = 0
IPC_CREAT = 0o1000
IPC_EXCL = 0o2000
IPC_NOWAIT = 0o4000

# Control commands common to every kind.
IPC_RMID = 0
IPC_SET = 1
IPC_STAT = 2
IPC_INFO = 3
# The version bit old callers or in-kernel users may add to a command.
IPC_64 = 0x0100

# An id is index + sequence * IPCMNI (ipc/util.h).
IPCMNI = 32768
IPCMNI_SHIFT = 15
# Sequence numbers wrap below this (ipc_mni_shift's seq_max).
SEQ_MAX = 1 << 16

# Mode bits kept beside the permission bits.
S_IRWXUGO = 0o777
S_IRUGO = 0o444
S_IWUGO = 0o222
S_IXUGO = 0o111

# Shared memory (shm.h).
SHM_HUGETLB = 0o4000
SHM_NORESERVE = 0o10000
SHM_RDONLY = 0o10000
SHM_RND = 0o20000
SHM_REMAP = 0o40000
SHM_EXEC = 0o100000
SHM_LOCK = 11
SHM_UNLOCK = 12
SHM_STAT = 13
SHM_INFO = 14
SHM_STAT_ANY = 15
# shm_perm.mode flags.
SHM_DEST = 0o1000
SHM_LOCKED = 0o2000
SHMLBA = 4096
SHMMIN = 1
SHMMNI = 4096
SHMMAX = (1 << 64) - 1 - (1 << 24)
SHMALL = (1 << 64) - 1 - (1 << 24)
SHMSEG = SHMMNI

# Semaphores (sem.h).
SEM_UNDO = 0x1000
GETPID = 11
GETVAL = 12
GETALL = 13
GETNCNT = 14
GETZCNT = 15
SETVAL = 16
SETALL = 17
SEM_STAT = 18
SEM_INFO = 19
SEM_STAT_ANY = 20
SEMMNI = 32000
SEMMSL = 32000
SEMMNS = SEMMNI * SEMMSL
SEMOPM = 500
SEMVMX = 32767
SEMAEM = SEMVMX
SEMUME = SEMOPM
SEMMNU = SEMMNS
SEMMAP = SEMMNS
SEMUSZ = 20

# Message queues (msg.h).
MSG_STAT = 11
MSG_INFO = 12
MSG_STAT_ANY = 13
MSG_NOERROR = 0o10000
MSG_EXCEPT = 0o20000
MSG_COPY = 0o40000
MSGMNI = 32000
MSGMAX = 8192
MSGMNB = 16384
MSGPOOL = MSGMNI * MSGMNB // 1024
MSGTQL = MSGMNB
MSGMAP = MSGMNB
MSGSSZ = 16
MSGSEG = 0xFFFF
# The largest msgrcv/msgsnd size argument (a long in the ABI, but the
# kernel takes it as a non-negative ssize_t).
MAX_MSGSZ = (1 << 63) - 1

# POSIX message queues (mqueue.h, ipc/mqueue.c).
MQ_PRIO_MAX = 32768
MQ_BYTES_MAX = 819200
DFLT_QUEUESMAX = 256
DFLT_MSGMAX = 10
DFLT_MSGSIZEMAX = 8192
HARD_MSGMAX = 65536
HARD_MSGSIZEMAX = 16 * 1024 * 1024
MIN_MSGMAX = 1
MIN_MSGSIZEMAX = 128
NOTIFY_NONE = 0
NOTIFY_WOKENUP = 1
NOTIFY_REMOVED = 2
NOTIFY_COOKIE_LEN = 32
MQUEUE_MAGIC = 0x19800202

# struct ipc64_perm: key, uid, gid, cuid, cgid, mode, seq, two unused longs.
IPC64_PERM = struct.Struct("<iIIIIIHH4xQQ")
# struct shmid64_ds after its ipc64_perm: segsz, atime, dtime, ctime, cpid,
# lpid, nattch, two unused longs.
SHMID64_DS_TAIL = struct.Struct("<QqqqiiQQQ")
# struct shminfo64: shmmax, shmmin, shmmni, shmseg, shmall, four unused.
SHMINFO64 = struct.Struct("<QQQQQQQQQ")
# struct shm_info: used_ids, shm_tot, shm_rss, shm_swp, swap_attempts,
# swap_successes.
SHM_INFO_STRUCT = struct.Struct("<i4xQQQQQ")
# struct semid64_ds after its ipc64_perm: otime, unused, ctime, unused,
# nsems, two unused.
SEMID64_DS_TAIL = struct.Struct("<qQqQQQQ")
# struct seminfo: semmap, semmni, semmns, semmnu, semmsl, semopm, semume,
# semusz, semvmx, semaem (ints).
SEMINFO = struct.Struct("<10i")
# struct sembuf: sem_num (u16), sem_op (s16), sem_flg (s16).
SEMBUF = struct.Struct("<Hhh")
# struct msqid64_ds after its ipc64_perm: stime, rtime, ctime, cbytes,
# qnum, qbytes, lspid, lrpid, two unused.
MSQID64_DS_TAIL = struct.Struct("<qqqQQQiiQQ")
# struct msginfo: msgpool, msgmap, msgmax, msgmnb, msgmni, msgssz, msgtql
# (ints), msgseg (unsigned short).
MSGINFO = struct.Struct("<7iH2x")
# struct mq_attr: mq_flags, mq_maxmsg, mq_msgsize, mq_curmsgs, four
# reserved longs.
MQ_ATTR = struct.Struct("<qqqq32x")
