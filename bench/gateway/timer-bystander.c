/*
 * The event-loop stall floor of the VM: a process that does nothing but wait on a 10 ms timer,
 * as the gateway's stall probe does, and reports how late each tick was. It runs beside the
 * gateway for a whole scenario. Whatever lateness it sees came from the machine (the VM's vCPUs
 * not running, the guest kernel's non-preemptible work, the other processes' share), not from
 * any code a gateway process runs: no event loop, no heap, no garbage collector. A gateway's
 * stall cannot be shorter than this one's in the same window; used as an anchor by
 * bench/gateway/stall.ts and the scenarios.
 *
 *   timer-bystander PERIOD_MS REPORT_OVER_MS
 *
 * Prints one line per tick later than REPORT_OVER_MS: "<unix ms when the tick ran> <late ms>
 * <CPU ms this process used in the gap>", the same lateness the gateway's probe computes (gap
 * minus period). Runs until stdin closes, so it dies with the runner that started it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double ms_of(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: timer-bystander PERIOD_MS REPORT_OVER_MS\n");
    return 2;
  }
  const int period_ms = atoi(argv[1]);
  const double report_over_ms = atof(argv[2]);
  if (period_ms <= 0 || report_over_ms < 0) {
    fprintf(stderr, "timer-bystander: PERIOD_MS must be positive and REPORT_OVER_MS not negative\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  double last = ms_of(CLOCK_MONOTONIC);
  double last_cpu = ms_of(CLOCK_PROCESS_CPUTIME_ID);
  for (;;) {
    /* Waiting in poll on stdin both sleeps one period (as a Node timer does, relative to the
     * last tick) and notices the runner going away. */
    struct pollfd in = {.fd = STDIN_FILENO, .events = POLLIN};
    int ready = poll(&in, 1, period_ms);
    if (ready < 0 && errno != EINTR) return 1;
    if (ready > 0) {
      char buffer[64];
      if (read(STDIN_FILENO, buffer, sizeof buffer) <= 0) return 0;
    }
    const double now = ms_of(CLOCK_MONOTONIC);
    const double cpu = ms_of(CLOCK_PROCESS_CPUTIME_ID);
    const double late = now - last - period_ms;
    if (late > report_over_ms) printf("%.3f %.3f %.3f\n", ms_of(CLOCK_REALTIME), late, cpu - last_cpu);
    last = now;
    last_cpu = cpu;
  }
}
