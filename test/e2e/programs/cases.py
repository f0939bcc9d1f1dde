"""The matrix of real programs: one bash script per case.

Each script runs in an empty scratch directory (its working directory),
writes only there, and prints what the programs did. The runner runs it
natively and under `runsc do`, on the host root and on the Debian root, and
compares stdout, exit status and (when `stderr` is true) stderr.

A script must be deterministic: fixed file times, fixed dates, fixed
authors, sorted listings, no inode numbers, no pids, no timings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    """Case is one program (or a few programs working together) to run."""

    name: str
    script: str
    # Whether stderr is deterministic enough to compare.
    stderr: bool = True
    # Why the case is expected to fail under runsc (a missing piece of the
    # sentry that another issue brings), or None; on which roots.
    xfail: str | None = None
    xfail_on: tuple[str, ...] = ("host", "debian")


CASES = [
    # bash.
    Case(
        "bash_pipeline",
        r"""
printf 'b\na\nc\nb\n' | sort | uniq | tr a-z A-Z | head -2
echo "${PIPESTATUS[@]}"
set -o pipefail
false | true; echo "pipefail=$?"
seq 1 20000 | head -1
echo "${PIPESTATUS[@]}"
""",
    ),
    Case(
        "bash_subshell",
        r"""
(cd /; pwd)
pwd | sed 's|.*/||'
x=$( (echo inner; exit 3) ); echo "$x $?"
{ echo group; }
echo "$BASH_SUBSHELL $(echo $BASH_SUBSHELL) $( (echo $BASH_SUBSHELL) )"
for i in 1 2 3; do echo $i; done | paste -sd+
echo "$((1+2+3)) $(( $(echo 6) * 7 ))"
a=outer; (a=inner; echo $a); echo $a
""",
    ),
    Case(
        "bash_job_control",
        r"""
set -m
sleep 1 &
wait %1; echo "wait=$?"
(exit 5) &
wait $!; echo "status=$?"
# The job may be reaped and reported before `wait` runs (natively too, if
# the child dies fast enough): wait by pid, whose status bash keeps.
sleep 30 &
pid=$!
kill %1
wait $pid; echo "killed=$?"
sleep 30 &
pid=$!
kill -TERM $pid
wait $pid; echo "term=$?"
(sleep 0.1; exit 2) &
(sleep 1; exit 3) &
wait -n; echo "first=$?"
wait; echo "all=$?"
jobs
echo done
""",
    ),
    Case(
        "bash_traps",
        r"""
trap 'echo on EXIT' EXIT
trap 'echo got USR1' USR1
kill -USR1 $$
trap 'echo ERR at $LINENO' ERR
false
trap - ERR
( trap 'echo sub TERM; exit 7' TERM; kill -TERM $BASHPID; sleep 5 )
echo "sub=$?"
sh -c 'kill -INT $$'; echo "int=$?"
trap 'echo int trapped' INT
kill -INT $$
exit 3
""",
    ),
    Case(
        "bash_redirections",
        r"""
exec 3>out
echo a >&3
echo b 1>&3
exec 3>&-
cat out
{ echo to-err >&2; } 2>&1
ls does-not-exist 2>/dev/null || echo "ls=$?"
cat <out >out2
cat out2 >>out
wc -l <out
echo both &>both; cat both
exec 4<out
read -r -u 4 line; echo "line=$line"
exec 4<&-
echo x >|clob; echo y >>clob; cat clob
exec 5<>rw; echo rw >&5; exec 5>&-; cat rw
""",
    ),
    Case(
        "bash_process_substitution",
        r"""
cat <(echo in) <(echo two)
while read -r l; do echo "read $l"; done < <(printf '1\n2\n')
diff <(printf 'a\nb\n') <(printf 'a\nc\n'); echo "diff=$?"
""",
    ),
    Case(
        "bash_heredoc",
        r"""
name=world
cat <<EOF
hello $name
$(echo command) $((6*7))
EOF
cat <<'EOF'
literal $name $(nothing)
EOF
cat <<-EOF
	tabs stripped
	EOF
cat <<<"here string $name"
while read -r a b; do echo "[$a|$b]"; done <<EOF
1 one
2 two
EOF
""",
    ),
    Case("bash_exit_status", "echo before; exit 42"),
    Case(
        "bash_coproc_ulimit_chld",
        r"""
coproc cat
echo hi >&"${COPROC[1]}"
read -r l <&"${COPROC[0]}"; echo "coproc: $l"
kill "$COPROC_PID"; wait "$COPROC_PID"; echo "cat=$?"
trap 'echo chld' CHLD
sleep 0.05 &
wait
trap - CHLD
(ulimit -n 64; ulimit -n; exec 70</dev/null) 2>&1 | sed 's/^.*: //'
printf '%(%Y-%m-%d)T
' 0
cd /usr/bin && pwd -P && cd -L ../lib && pwd
set -e; f() { return 3; }; f || echo handled
""",
    ),
    Case(
        "crash_signals",
        r"""
cat >seg.c <<'EOF2'
int main(void) { *(volatile int *)0 = 1; return 0; }
EOF2
cat >fpe.c <<'EOF2'
int main(void) { volatile int z = 0; return 1 / z; }
EOF2
cat >abrt.c <<'EOF2'
#include <stdlib.h>
int main(void) { abort(); }
EOF2
for p in seg fpe abrt; do gcc -O0 -o $p $p.c; done
# bash reports the signal with the child's pid: hide the pid.
for p in seg fpe abrt; do
  { ./$p; echo "$p=$?"; } 2>&1 | sed -E 's/line [0-9]+: +[0-9]+ /line N: PID /'
done
{ bash -c 'kill -KILL $$'; echo "kill=$?"; } 2>&1 | sed -E 's/: +[0-9]+ / PID /'
sh -c 'sleep 10 & wait' &
sleep 0.2; kill -TERM %1; wait %1; echo "term=$?"
""",
    ),
    # coreutils.
    Case(
        "coreutils_ls",
        r"""
mkdir -p d/sub
printf 'hello\n' >d/f
printf '%s' 1234567890 >d/g
ln -s f d/link
chmod 640 d/f; chmod 755 d/sub
touch -h -d @1000000000 d/f d/g d/sub d/link
# Directory sizes and "total" are the file system's (4096 on ext4, from 40
# on tmpfs, where the sandbox's overlay keeps new directories).
ls -l --time-style=+%Y-%m-%dT%H:%M:%S d | grep -v -e '^total' -e '^d' | tr -s ' '
ls -ld --time-style=long-iso d/sub | cut -d' ' -f1-4
ls -1 -R d
ls -d d/*
""",
    ),
    Case(
        "coreutils_cp_mv_rm",
        r"""
mkdir -p src/a/b
echo one >src/a/1; echo two >src/a/b/2; ln -s 1 src/a/l
cp -r src dst
cp -a src dst2
mv dst/a/1 dst/a/one
mv dst moved
find . | sort
cat moved/a/one moved/a/b/2
readlink dst2/a/l
rm -r moved
rm -rf dst2 src/a/b
find . | sort
rm src/a/nope 2>/dev/null; echo "rm=$?"
""",
    ),
    Case(
        "coreutils_text",
        r"""
printf 'pear\napple\nfig\napple\nbanana\npear\npear\n' >fruit
sort fruit
sort -r -u fruit
sort fruit | uniq -c
sort -n <<EOF
10
9
100
EOF
wc fruit
wc -l -c <fruit
head -3 fruit
head -c 5 fruit; echo
tail -2 fruit
tail -n +6 fruit
seq 1000 | tail -1
cut -c1-3 fruit | tr '\n' ' '; echo
""",
    ),
    Case(
        "coreutils_find_xargs",
        r"""
mkdir -p t/x/y t/z
for f in t/a t/x/b t/x/y/c t/z/d; do echo "$f" >"$f"; done
find t -type f | sort
find t -type d -name '[xy]' | sort
find t -name c -exec cat {} \;
find t -type f -print0 | sort -z | xargs -0 cat
find t -type f | sort | xargs -n 2 echo
find t -type f | sort | xargs wc -c
echo a b c | xargs -I{} echo '<{}>'
find t -maxdepth 1 | sort
find t -newer t/a -type f | sort >/dev/null; echo "newer=$?"
""",
    ),
    Case(
        "coreutils_stat",
        r"""
printf 'abc' >f; mkdir d; ln -s f l
touch -d @1234567890 f d
touch -h -d @1234567890 l
chmod 604 f
stat -c '%n %s %A %a %F %h %u %g %U %G %X %Y' f
stat -c '%n %A %a %F %h %u %g %U %G %X %Y' d
stat -c '%n %F %N' l
stat -L -c '%n %s %F' l
stat -c %s /dev/null; stat -c '%F %t %T' /dev/null
stat nope 2>&1; echo "stat=$?"
""",
    ),
    Case(
        "coreutils_date",
        r"""
date -u -d @0
date -u -d @1234567890 '+%Y-%m-%d %H:%M:%S %A %j'
TZ=UTC date -d '1970-01-02' +%s
date -u -d '2020-02-29 + 1 year' +%F
date +%Y >/dev/null; echo "now=$?"
""",
    ),
    Case(
        "coreutils_id_env",
        r"""
id; id -u; id -g; id -un; id -G
whoami
env -i A=1 B=two env
env -u HOME sh -c 'echo "home=${HOME-unset}"'
env | grep -E '^(LANG|TZ|HOME|PATH)=' | sort
printenv PATH
uname -s; uname -m
nproc >/dev/null; echo "nproc=$?"
HOME=/root bash -c 'echo "$PATH"'
""",
    ),
    # Which file systems df lists (its stderr says whether /proc/self/mounts
    # could be read) depends on the root; what it prints about . does not.
    Case(
        "coreutils_df",
        r"""
df . >/dev/null; echo "df=$?"
df -P . | head -1 | tr -s ' '
df -h . | wc -l
df -i . >/dev/null; echo "df=$?"
""",
        stderr=False,
    ),
    Case(
        "procps",
        r"""
sleep 5 &
ps -o comm= -p $!
ps -o stat= -p $$ | cut -c1
kill %1
""",
    ),
    # grep, sed, awk.
    Case(
        "grep",
        r"""
printf 'alpha\nBeta\ngamma\ndelta\nepsilon 42\n' >w
grep a w
grep -i beta w
grep -c a w
grep -n -E 'ta$|[0-9]+' w
grep -v a w
grep -o '[0-9][0-9]*' w
grep -r gamma . ; grep -l delta w
grep zzz w; echo "grep=$?"
grep -q alpha w && echo quiet
grep -P 'eps\w+' w 2>/dev/null || echo "nopcre"
""",
    ),
    Case(
        "sed",
        r"""
printf 'one two\nthree four\nfive six\n' >s
sed 's/o/0/g' s
sed -n '2p' s
sed -E 's/([a-z]+) ([a-z]+)/\2 \1/' s
sed '/three/d' s
sed -i.bak 's/five/5/' s; cat s s.bak
printf 'a\nb\nc\n' | sed -n '$='
sed = s | sed 'N;s/\n/ /'
""",
    ),
    Case(
        "awk",
        r"""
printf 'x 1\ny 2\nx 3\nz 4\n' >a
awk '{ s[$1] += $2 } END { for (k in s) print k, s[k] }' a | sort
awk -F' ' '$2 > 1 { print NR": "$0 }' a
awk 'BEGIN { printf "%5.2f|%-4s|%x\n", 3.14159, "ab", 255 }'
awk 'BEGIN { print length("hello"), substr("hello", 2, 3), toupper("x") }'
awk 'BEGIN { srand(1); print int(rand() * 0) ; exit 3 }'; echo "awk=$?"
seq 5 | awk '{ t += $1 } END { print t, NR }'
""",
    ),
    # tar, gzip, xz.
    Case(
        "tar_gzip_xz",
        r"""
mkdir -p tree/sub
printf 'file one\n' >tree/one
seq 1 2000 >tree/sub/numbers
touch -d @1500000000 tree/one tree/sub/numbers tree/sub tree
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1500000000 \
  -czf t.tgz tree
tar --sort=name --owner=0 --group=0 --numeric-owner -cJf t.txz tree
tar --sort=name -cf t.tar tree
tar -tzf t.tgz
tar -tvJf t.txz | awk '{ print $1, $2, $3, $6 }'
mkdir out1 out2 out3
tar -xzf t.tgz -C out1
tar -xJf t.txz -C out2
tar -xf t.tar -C out3
cmp tree/sub/numbers out1/tree/sub/numbers && echo same1
cmp tree/sub/numbers out2/tree/sub/numbers && echo same2
diff -r tree out3/tree && echo same3
stat -c '%n %Y' out2/tree/one
gzip -9 -n -c tree/sub/numbers | gunzip | sha256sum
gzip -n -c tree/sub/numbers | md5sum
xz -c tree/sub/numbers | xz -dc | tail -1
xz -T2 -c tree/sub/numbers | xz -t && echo xzok
gunzip -c t.tar 2>&1 >/dev/null; echo "gunzip=$?"
""",
    ),
    # python3.
    Case(
        "python3_threads",
        r"""
python3 - <<'EOF'
import threading, queue
q = queue.Queue()
lock = threading.Lock()
total = [0]
def work(n):
    for i in range(1000):
        with lock:
            total[0] += 1
    q.put(n)
ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print(sorted(q.get() for _ in range(8)), total[0])
ev = threading.Event()
threading.Timer(0.05, ev.set).start()
print("event", ev.wait(10))
c = threading.Condition()
print(threading.active_count())
EOF
""",
    ),
    Case(
        "python3_subprocess",
        r"""
python3 - <<'EOF'
import subprocess, sys, os
r = subprocess.run(["sh", "-c", "echo out; echo err >&2; exit 4"],
                   capture_output=True, text=True)
print(repr(r.stdout), repr(r.stderr), r.returncode)
upper = "import sys; print(sys.stdin.read().upper())"
p = subprocess.Popen([sys.executable, "-c", upper],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
print(p.communicate(b"piped")[0], p.returncode)
print(subprocess.check_output("echo a | tr a b", shell=True))
try:
    subprocess.run(["/nonexistent/prog"])
except FileNotFoundError as e:
    print("FileNotFoundError", e.errno)
try:
    subprocess.run(["sleep", "10"], timeout=0.2)
except subprocess.TimeoutExpired:
    print("timeout")
pid = os.fork()
if pid == 0:
    os._exit(9)
print(os.waitpid(pid, 0)[1] >> 8)
EOF
""",
    ),
    Case(
        "python3_multiprocessing",
        r"""
python3 - <<'EOF'
import multiprocessing as mp
def sq(x):
    return x * x
if __name__ == "__main__":
    with mp.Pool(2) as p:
        print(p.map(sq, range(10)))
    q = mp.Queue()
    pr = mp.Process(target=q.put, args=("from child",))
    pr.start(); print(q.get()); pr.join(); print(pr.exitcode)
    lock = mp.Lock()
    with lock:
        print("locked")
EOF
""",
    ),
    Case(
        "python3_sysv_posix_ipc",
        r"""
python3 - <<'EOF'
import ctypes, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
IPC_CREAT, IPC_RMID, SEM_UNDO = 0o1000, 0, 0x1000

# System V shared memory, shared with a child and listed by ipcs.
sid = libc.shmget(0, 8192, IPC_CREAT | 0o640)
addr = libc.shmat(sid, None, 0)
ctypes.memmove(addr, b"parent", 6)
pid = os.fork()
if pid == 0:
    ctypes.memmove(addr, b"child!", 6)
    os._exit(0)
os.waitpid(pid, 0)
print("shm", ctypes.string_at(addr, 6))
out = subprocess.run(["ipcs", "-m"], capture_output=True, text=True).stdout
rows = [l.split() for l in out.splitlines()]
print("ipcs", [r[3:6] for r in rows if r[1:2] == [str(sid)]])
libc.shmdt(ctypes.c_void_p(addr))
print("rmid", libc.shmctl(sid, IPC_RMID, None))

# A System V semaphore taken by a child with SEM_UNDO and given back at
# its exit.
class Sembuf(ctypes.Structure):
    _fields_ = [
        ("num", ctypes.c_ushort), ("op", ctypes.c_short), ("flg", ctypes.c_short)
    ]
semid = libc.semget(0, 1, IPC_CREAT | 0o600)
libc.semctl(semid, 0, 16, 1)  # SETVAL
pid = os.fork()
if pid == 0:
    libc.semop(semid, ctypes.byref(Sembuf(0, -1, SEM_UNDO)), 1)
    os._exit(libc.semctl(semid, 0, 12))  # GETVAL
print("child saw", os.waitpid(pid, 0)[1] >> 8, "after exit", libc.semctl(semid, 0, 12))
libc.semctl(semid, 0, IPC_RMID)

# A System V message queue between processes.
class Msg(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 32)]
mid = libc.msgget(0, IPC_CREAT | 0o600)
pid = os.fork()
if pid == 0:
    libc.msgsnd(mid, ctypes.byref(Msg(2, b"hi from child")), 13, 0)
    os._exit(0)
m = Msg()
n = libc.msgrcv(mid, ctypes.byref(m), 32, 2, 0)
os.waitpid(pid, 0)
print("msg", m.mtype, m.mtext[:n])
libc.msgctl(mid, IPC_RMID, None)

# A POSIX message queue.
name = b"/pyvisor-e2e-%d" % os.getpid()
q = libc.mq_open(name, os.O_CREAT | os.O_RDWR, 0o600, None)
libc.mq_send(q, b"second", 6, 1)
libc.mq_send(q, b"first", 5, 7)
buf = ctypes.create_string_buffer(8192)
prio = ctypes.c_uint()
for _ in range(2):
    n = libc.mq_receive(q, buf, 8192, ctypes.byref(prio))
    print("mq", buf.raw[:n], prio.value)
libc.mq_close(q)
print("unlink", libc.mq_unlink(name))
EOF
""",
    ),
    Case(
        "python3_sqlite3_json_hashlib",
        r"""
python3 - <<'EOF'
import sqlite3, json, hashlib
db = sqlite3.connect("t.db")
db.execute("create table t (k text primary key, v integer)")
db.executemany("insert into t values (?, ?)", [("a", 1), ("b", 2), ("c", 3)])
db.commit()
print(db.execute("select sum(v), group_concat(k) from t").fetchone())
db.close()
print(sqlite3.connect("t.db").execute("select count(*) from t").fetchone())
doc = {"b": [1, 2.5, None, True], "a": {"x": "y\u00e9"}}
s = json.dumps(doc, sort_keys=True)
print(s, json.loads(s) == doc)
print(json.dumps(doc, indent=2, ensure_ascii=False))
print(hashlib.sha256(b"pyvisor").hexdigest())
print(hashlib.md5(b"").hexdigest(), hashlib.sha1(b"abc").hexdigest())
print(hashlib.blake2b(b"x", digest_size=8).hexdigest())
h = hashlib.sha512()
h.update(open("t.db", "rb").read()[:0]); print(h.hexdigest()[:16])
EOF
""",
    ),
    Case(
        "python3_os",
        r"""
python3 - <<'EOF'
import concurrent.futures, fcntl, os, subprocess, time
with concurrent.futures.ThreadPoolExecutor(4) as ex:
    print(list(ex.map(abs, [-1, -2, -3])))
pid = os.posix_spawn("/bin/sh", ["sh", "-c", "exit 6"], os.environ)
print("posix_spawn", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
fd = os.memfd_create("x")
os.write(fd, b"abc"); print(os.pread(fd, 3, 0))
r, w = os.pipe2(os.O_NONBLOCK); print(os.get_blocking(r))
os.mkfifo("fifo"); print(oct(os.stat("fifo").st_mode))
with open("lock", "w") as f:
    fcntl.lockf(f, fcntl.LOCK_EX); print("lockf")
t = time.perf_counter(); time.sleep(0.05); print(time.perf_counter() - t >= 0.05)
print(subprocess.run(["true"], preexec_fn=os.setsid).returncode)
import zipfile, io, lzma, bz2, zlib
b = io.BytesIO()
with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr(zipfile.ZipInfo("a", (1980, 1, 1, 0, 0, 0)), "b" * 100)
print(len(b.getvalue()), len(lzma.compress(b"x" * 1000)) > 0)
print(bz2.decompress(bz2.compress(b"y")), zlib.crc32(b"pyvisor"))
import pwd, getpass, platform
print(getpass.getuser(), pwd.getpwuid(0).pw_name, platform.machine(), platform.system())
EOF
""",
    ),
    Case(
        "python3_asyncio",
        r"""
python3 -c 'import asyncio; asyncio.run(asyncio.sleep(0.01)); print("ok")'
""",
    ),
    Case(
        "python3_exception_exit",
        r"""
cat >boom.py <<'EOF'
import sys
print("before", flush=True)
def f():
    raise ValueError("boom")
f()
EOF
python3 boom.py; echo "python=$?"
python3 -c 'import sys; sys.exit("message")'; echo "exit=$?"
python3 -c 'raise SystemExit(7)'; echo "exit=$?"
python3 -c 'import os, signal; os.kill(os.getpid(), signal.SIGTERM)'; echo "sig=$?"
""",
    ),
    # perl.
    Case(
        "perl",
        r"""
perl -e 'print "hello from perl\n";
  printf("%05.1f %s\n", 3.14159, join(",", sort { $a <=> $b } (10, 2, 33)));'
printf 'k1=v1\nk2=v2\n' | perl -ne 'chomp; my ($k, $v) = split /=/; print "$v:$k\n"'
perl -e 'my %h = (b => 2, a => 1);
  print join(" ", map { "$_=$h{$_}" } sort keys %h), "\n"'
perl -e 'my $pid = fork(); if ($pid == 0) { exit 3 }
  waitpid($pid, 0); print $? >> 8, "\n"'
perl -e 'open(my $f, ">", "p.txt") or die; print $f "data\n"; close $f;
  open($f, "<", "p.txt"); print scalar(<$f>)'
perl -MPOSIX -e 'print POSIX::strftime("%Y-%m-%d", gmtime(0)), "\n"'
perl -e 'local $SIG{ALRM} = sub { print "alarm\n"; exit 0 }; alarm 1; sleep 3'
perl -e 'pipe(R, W); if (fork) { close W; print <R>; wait }
  else { close R; print W "child\n"; exit }'
perl -e 'die "perl died\n"'; echo "perl=$?"
""",
    ),
    # The sqlite3 command-line program.
    Case(
        "sqlite3_cli",
        r"""
sqlite3 db.sqlite <<'EOF'
create table people (name text, age integer);
insert into people values ('ann', 31), ('bob', 27), ('cy', 45);
select name from people where age > 30 order by name;
select count(*), max(age) from people;
EOF
sqlite3 -header -csv db.sqlite 'select * from people order by age'
sqlite3 db.sqlite 'pragma integrity_check'
echo 'select nope;' | sqlite3 db.sqlite; echo "sqlite=$?"
""",
        # The error message names the input line: deterministic, compared.
    ),
    # gcc and make.
    Case(
        "gcc",
        r"""
cat >hello.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
int main(int argc, char **argv) {
  char *p = malloc(1 << 20);
  memset(p, 'x', 1 << 20);
  printf("hello %d %zu %.3f\n", argc, strlen(argv[0]) > 0, sqrt(2.0));
  free(p);
  return 7;
}
EOF
gcc -O2 -Wall -o hello hello.c -lm && echo compiled
./hello a b; echo "hello=$?"
gcc -static -o hello-static hello.c -lm 2>/dev/null && ./hello-static; echo "static=$?"
gcc -c -o hello.o hello.c && gcc -o hello2 hello.o -lm && ./hello2; echo "linked=$?"
echo 'int main(void) { return missing; }' >bad.c
gcc bad.c -o bad 2>/dev/null; echo "gcc=$?"
cat >thr.c <<'EOF'
#include <pthread.h>
#include <stdio.h>
static __thread int v;
static void *f(void *a) { v = (int)(long)a; return (void *)(long)(v * 2); }
int main(void) {
  pthread_t t[4]; long sum = 0;
  for (long i = 0; i < 4; i++) pthread_create(&t[i], 0, f, (void *)i);
  for (int i = 0; i < 4; i++) { void *r; pthread_join(t[i], &r); sum += (long)r; }
  printf("threads %ld %d\n", sum, v);
  return 0;
}
EOF
gcc -O2 -pthread -o thr thr.c && ./thr
""",
    ),
    Case(
        "gcc_asan",
        r"""
cat >a.c <<'EOF'
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
  char *p = malloc(16);
  memset(p, 0, 16);
  int r = p[argc * 20]; /* a heap-buffer-overflow read */
  free(p);
  return r;
}
EOF
gcc -g -fsanitize=address -o a a.c
ASAN_OPTIONS=detect_leaks=0 ./a 2>&1 | grep -o 'ERROR: AddressSanitizer: [a-z-]*'
echo "asan=${PIPESTATUS[0]}"
""",
    ),
    Case(
        "gcc_lsan",
        r"""
echo 'int main(void) { return 0; }' >a.c
gcc -fsanitize=address -o a a.c && ./a; echo "lsan=$?"
cat >l.c <<'EOF'
#include <stdlib.h>
void *g;
int main(void) { g = malloc(7); g = 0; return 0; }
EOF
gcc -fsanitize=address -o l l.c
./l 2>&1 | grep -o 'Direct leak of 7 byte(s)'; echo "leak=${PIPESTATUS[0]}"
""",
    ),
    Case(
        "make",
        r"""
printf 'int add(int a, int b) { return a + b; }\n' >add.c
cat >main.c <<'EOF'
#include <stdio.h>
int add(int, int);
int main(void) { printf("%d\n", add(2, 3)); return 0; }
EOF
cat >Makefile <<'EOF'
prog: main.o add.o
	$(CC) -o $@ $^
%.o: %.c
	$(CC) -c -o $@ $<
.PHONY: run clean
run: prog
	./prog
clean:
	rm -f prog *.o
EOF
make -s -j2 run
make -s run
make -s clean; ls
make -s nonexistent 2>&1; echo "make=$?"
""",
    ),
    # git.
    Case(
        "git",
        r"""
export GIT_AUTHOR_NAME=A GIT_AUTHOR_EMAIL=a@example.com
export GIT_COMMITTER_NAME=C GIT_COMMITTER_EMAIL=c@example.com
export GIT_AUTHOR_DATE='@1600000000 +0000' GIT_COMMITTER_DATE='@1600000000 +0000'
export GIT_CONFIG_NOSYSTEM=1 HOME=$PWD
git init -q -b main repo
cd repo
echo hello >a.txt
git add a.txt
git commit -q -m first
echo world >>a.txt; mkdir d; echo x >d/b
git add -A
git commit -q -m second
git log --format='%H %an %ad %s' --date=iso-strict
git status --porcelain
git diff HEAD~1 --stat
git show HEAD:a.txt
git rev-parse HEAD^{tree}
git cat-file -p HEAD~1 | head -3
git gc -q && git count-objects -v | grep -E '^(count|in-pack)'
cd .. && git clone -q repo clone && git -C clone log --format=%s
""",
    ),
    # openssl.
    Case(
        "openssl",
        r"""
printf 'the quick brown fox\n' >msg
openssl dgst -sha256 msg
openssl dgst -sha1 -r msg
openssl dgst -sha256 -hmac key msg
K=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
IV=0f0e0d0c0b0a09080706050403020100
openssl enc -aes-256-cbc -K $K -iv $IV -in msg -out msg.enc
openssl base64 -in msg.enc
openssl enc -d -aes-256-cbc -K $K -iv $IV -in msg.enc
openssl rand -hex 8 | wc -c
openssl version >/dev/null && echo version
openssl genpkey -algorithm ed25519 -out ed.pem && head -1 ed.pem
openssl req -x509 -newkey rsa:1024 -nodes -keyout k.pem -out c.pem \
  -subj /CN=pyvisor -days 1 2>/dev/null && openssl x509 -in c.pem -noout -subject
""",
    ),
    # file.
    Case(
        "file",
        r"""
printf '#!/bin/sh\necho hi\n' >script.sh
printf 'plain text\n' >text.txt
printf '\x89PNG\r\n\x1a\n' >img.png
gzip -n -c text.txt >text.gz
mkdir dir; ln -s text.txt link
file script.sh text.txt img.png text.gz dir link
file -L link
file -b --mime-type text.gz
file -b /bin/bash | cut -d, -f1-2
""",
    ),
    # node.
    Case(
        "node",
        r"""
node -e '
const fs = require("fs");
const cp = require("child_process");
const crypto = require("crypto");
console.log("node", [3, 1, 2].sort().join(","), JSON.stringify({a: 1}));
fs.writeFileSync("n.txt", "written by node\n");
console.log(fs.readFileSync("n.txt", "utf8").trim());
console.log(crypto.createHash("sha256").update("x").digest("hex"));
console.log(cp.execSync("echo from child").toString().trim());
Promise.resolve(1).then(v => console.log("promise", v));
// The timer starts once the read is in: which of the two ends first
// otherwise depends on the machine, natively too.
fs.readFile("n.txt", (err, d) => {
  console.log("async read", d.length);
  setTimeout(() => { console.log("timer"); }, 20);
});
process.on("exit", (c) => console.log("exit", c));
'
node -e 'process.exit(5)'; echo "node=$?"
node -e '
const { Worker } = require("worker_threads");
new Worker("require(\"worker_threads\").parentPort.postMessage(6 * 7)", { eval: true })
  .on("message", (m) => console.log("worker says", m));
'
""",
    ),
    Case(
        "node_fs_watch",
        r"""
node -e 'require("fs").watch(".", () => {}).close(); console.log("watch")'
""",
    ),
    Case(
        "script_pty",
        r"""
script -qec 'tty >/dev/null && echo on a tty' /dev/null | tr -d '\r'
""",
    ),
]
