// Blocks in the call named by argv[1] until events_test.py sends SIGUSR1,
// and reports how the call ended: "eintr" when it failed with EINTR,
// "value N" when an eventfd read returned N after a transparent restart.
// With "handled" the SIGUSR1 handler ran; with "masked" SIGUSR1 is blocked
// again afterwards (the temporary mask of ppoll/epoll_pwait is gone).
//
// Modes: eventfd_eintr, eventfd_restart, signalfd_eintr, poll_eintr,
// select_eintr, epoll_eintr, ppoll_mask, epoll_pwait_mask.

#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <unistd.h>

static int efd = -1;
static volatile sig_atomic_t handled = 0;

// async-signal-safe: write(2) on an eventfd. Only the first signal feeds
// the eventfd, however many the test sends.
static void on_usr1(int signo) {
  (void)signo;
  if (handled) return;
  handled = 1;
  uint64_t five = 5;
  if (efd >= 0 && write(efd, &five, sizeof(five)) != sizeof(five)) handled = 2;
}

static void install(int restart, int feed_eventfd) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_usr1;
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigaction(SIGUSR1, &sa, NULL);
  if (!feed_eventfd) efd = -1;
}

static void ready(void) {
  printf("waiting\n");
  fflush(stdout);
}

static int report(long ret) {
  int blocked = 0;
  sigset_t now;
  if (sigprocmask(SIG_BLOCK, NULL, &now) == 0) blocked = sigismember(&now, SIGUSR1);
  if (ret < 0 && errno == EINTR) {
    printf("eintr%s%s\n", handled ? " handled" : "", blocked ? " masked" : "");
    return 0;
  }
  printf("unexpected %ld errno %d\n", ret, ret < 0 ? errno : 0);
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const char* mode = argv[1];
  int fd = eventfd(0, EFD_CLOEXEC);
  if (fd < 0) return 1;
  uint64_t v = 0;

  if (strcmp(mode, "eventfd_eintr") == 0) {
    install(0, 0);
    ready();
    return report(read(fd, &v, sizeof(v)));
  }
  if (strcmp(mode, "eventfd_restart") == 0) {
    efd = fd;
    install(1, 1);
    ready();
    long n = read(fd, &v, sizeof(v));
    if (n != sizeof(v)) return report(n);
    printf("value %llu\n", (unsigned long long)v);
    return 0;
  }
  if (strcmp(mode, "signalfd_eintr") == 0) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) return 1;
    install(0, 0);
    ready();
    struct signalfd_siginfo info;
    return report(read(sfd, &info, sizeof(info)));
  }
  if (strcmp(mode, "poll_eintr") == 0) {
    install(1, 0);
    struct pollfd pfd = {fd, POLLIN, 0};
    ready();
    return report(poll(&pfd, 1, -1));
  }
  if (strcmp(mode, "select_eintr") == 0) {
    install(1, 0);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(fd, &r);
    ready();
    return report(select(fd + 1, &r, NULL, NULL, NULL));
  }
  if (strcmp(mode, "epoll_eintr") == 0 || strcmp(mode, "epoll_pwait_mask") == 0) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) return 1;
    install(1, 0);
    if (strcmp(mode, "epoll_eintr") == 0) {
      ready();
      return report(epoll_wait(ep, &ev, 1, -1));
    }
    sigset_t set, empty;
    sigemptyset(&set);
    sigemptyset(&empty);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    ready();
    return report(epoll_pwait(ep, &ev, 1, -1, &empty));
  }
  if (strcmp(mode, "ppoll_mask") == 0) {
    install(1, 0);
    sigset_t set, empty;
    sigemptyset(&set);
    sigemptyset(&empty);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct pollfd pfd = {fd, POLLIN, 0};
    ready();
    return report(ppoll(&pfd, 1, NULL, &empty));
  }
  return 2;
}
