// whoami: prints what a container's process sees of its identity and
// settings, one "key=value" per line, for spec_test.py.

#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

int main() {
  printf("uid=%d euid=%d gid=%d egid=%d\n", getuid(), geteuid(), getgid(),
         getegid());
  gid_t groups[64];
  int n = getgroups(64, groups);
  printf("groups=");
  for (int i = 0; i < n; ++i) printf("%s%d", i ? "," : "", groups[i]);
  printf("\n");
  char cwd[4096];
  printf("cwd=%s\n", getcwd(cwd, sizeof(cwd)) ? cwd : "?");
  struct utsname u;
  uname(&u);
  printf("hostname=%s\n", u.nodename);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  printf("nofile=%llu:%llu\n", static_cast<unsigned long long>(rl.rlim_cur),
         static_cast<unsigned long long>(rl.rlim_max));
  printf("no_new_privs=%d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
  printf("bounding_kill=%d bounding_sys_admin=%d\n",
         prctl(PR_CAPBSET_READ, 5 /* CAP_KILL */, 0, 0, 0),
         prctl(PR_CAPBSET_READ, 21 /* CAP_SYS_ADMIN */, 0, 0, 0));
  const char* v = getenv("E2E_VAR");
  printf("E2E_VAR=%s\n", v ? v : "(unset)");
  return 0;
}
