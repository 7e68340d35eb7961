/*
 * maxrss: runs one command and reports its wall time and peak resident set size, measured
 * by the kernel (wait4's rusage.ru_maxrss), on stderr as one JSON line prefixed "@maxrss ".
 *
 *   maxrss [--netns /run/netns/NAME] [--stdout FILE] [--stdin FILE] -- command args...
 *
 * --netns enters that network namespace before exec (unlike `ip netns exec`, no ip(8)
 * process is folded into the peak RSS). --stdout redirects the command's stdout to FILE
 * (truncated). Exit status: the command's, 127 if it could not be started.
 * Built by bench/run.sh into .cache/bench/maxrss with the C compiler node-gyp already needs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  const char *netns = NULL, *out = NULL, *in = NULL;
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) { i++; break; }
    if (strcmp(argv[i], "--netns") == 0 && i + 1 < argc) netns = argv[++i];
    else if (strcmp(argv[i], "--stdout") == 0 && i + 1 < argc) out = argv[++i];
    else if (strcmp(argv[i], "--stdin") == 0 && i + 1 < argc) in = argv[++i];
    else { fprintf(stderr, "maxrss: unknown option %s\n", argv[i]); return 127; }
  }
  if (i >= argc) { fprintf(stderr, "usage: maxrss [--netns PATH] [--stdout FILE] -- command args...\n"); return 127; }
  int nsfd = -1;
  if (netns) {
    nsfd = open(netns, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) { fprintf(stderr, "maxrss: open %s: %s\n", netns, strerror(errno)); return 127; }
  }
  double start = now();
  pid_t pid = fork();
  if (pid < 0) { perror("maxrss: fork"); return 127; }
  if (pid == 0) {
    if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) != 0) { fprintf(stderr, "maxrss: setns: %s\n", strerror(errno)); _exit(127); }
    if (out) {
      int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0 || dup2(fd, 1) < 0) { fprintf(stderr, "maxrss: %s: %s\n", out, strerror(errno)); _exit(127); }
    }
    if (in) {
      int fd = open(in, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || dup2(fd, 0) < 0) { fprintf(stderr, "maxrss: %s: %s\n", in, strerror(errno)); _exit(127); }
    }
    execvp(argv[i], argv + i);
    fprintf(stderr, "maxrss: exec %s: %s\n", argv[i], strerror(errno));
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) { perror("maxrss: wait4"); return 127; }
  }
  double wall = now() - start;
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  fprintf(stderr, "@maxrss {\"wallSeconds\":%.6f,\"maxRssKiB\":%ld,\"userSeconds\":%.6f,\"systemSeconds\":%.6f,\"status\":%d}\n",
          wall, ru.ru_maxrss, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
          ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, code);
  return code;
}
