// Waits for standard input and an eventfd (or a signalfd) at once with the
// call named by argv[1], and reports which woke it. Used by events_test.py
// to show that a sandboxed task blocked on a host descriptor and a sandbox
// file wakes for the host one, and does not spin while it waits.
//
// Protocol on stdout, one line each: "waiting" once set up, then
// "stdin <byte>" or "signal <signo>" for what woke it, "none" for a timeout.
// epoll_et also prints "quiet" when a second wait sees no new edge, then
// waits again.

#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <unistd.h>

static int report_stdin(void) {
  char c;
  if (read(0, &c, 1) != 1) return 1;
  printf("stdin %c\n", c);
  return 0;
}

static int wait_epoll(int efd, int edge) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN | (edge ? EPOLLET : 0)};
  ev.data.fd = 0;
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) != 0) return 1;
  ev.data.fd = efd;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) != 0) return 1;
  printf("waiting\n");
  fflush(stdout);
  if (epoll_wait(ep, &ev, 1, -1) != 1 || ev.data.fd != 0) return 1;
  if (!edge) return report_stdin();
  // The byte is left unread: no new edge, so the next wait times out.
  int n = epoll_wait(ep, &ev, 1, 200);
  if (n != 0) return 1;
  printf("quiet\n");
  fflush(stdout);
  if (epoll_wait(ep, &ev, 1, -1) != 1 || ev.data.fd != 0) return 1;
  return report_stdin();
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const char* mode = argv[1];
  int efd = eventfd(0, EFD_CLOEXEC);
  if (efd < 0) return 1;

  if (strcmp(mode, "signalfd") == 0) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return 1;
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) return 1;
    struct pollfd pfds[2] = {{0, POLLIN, 0}, {sfd, POLLIN, 0}};
    printf("waiting\n");
    fflush(stdout);
    if (poll(pfds, 2, -1) < 1) return 1;
    if (pfds[1].revents & POLLIN) {
      struct signalfd_siginfo info;
      if (read(sfd, &info, sizeof(info)) != sizeof(info)) return 1;
      printf("signal %u\n", info.ssi_signo);
      return 0;
    }
    return report_stdin();
  }
  if (strcmp(mode, "epoll") == 0) return wait_epoll(efd, 0);
  if (strcmp(mode, "epoll_et") == 0) return wait_epoll(efd, 1);

  printf("waiting\n");
  fflush(stdout);
  if (strcmp(mode, "poll") == 0 || strcmp(mode, "ppoll") == 0) {
    struct pollfd pfds[2] = {{0, POLLIN, 0}, {efd, POLLIN, 0}};
    int n = mode[0] == 'p' && mode[1] == 'p'
                ? ppoll(pfds, 2, NULL, NULL)
                : poll(pfds, 2, -1);
    if (n != 1 || !(pfds[0].revents & POLLIN)) return 1;
    return report_stdin();
  }
  if (strcmp(mode, "select") == 0) {
    fd_set r;
    FD_ZERO(&r);
    FD_SET(0, &r);
    FD_SET(efd, &r);
    if (select(efd + 1, &r, NULL, NULL, NULL) != 1 || !FD_ISSET(0, &r)) {
      return 1;
    }
    return report_stdin();
  }
  return 2;
}
