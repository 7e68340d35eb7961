/*
 * The system-call floor of a just-in-time install: one long-running process sending one-peer
 * WG_CMD_SET_DEVICE messages, each the install the gateway makes (a new peer with an endpoint,
 * one allowed IP and, with --keepalive, a persistent keepalive so the kernel initiates at once),
 * each followed by its ack. Nothing but the netlink message: no validation, no encoding
 * framework, no thread hop. Used as an anchor by bench/gateway/jit-latency.ts.
 *
 *   install-floor IFNAME COUNT GAP_MS [--keepalive] [--keep] [--first-index I]
 *
 * --keep leaves the installed peers on the device (as the netlink bench's library rows do,
 * installing back to back onto a growing device); --first-index numbers them from I, so that
 * several runs on one device use distinct allowed IPs.
 *
 * Peers get random keys (the kernel precomputes a DH with each, as for a real client), endpoints
 * in 192.0.2.0/24 (TEST-NET-1: the kernel's initiations go nowhere) and allowed IPs in
 * 100.64.0.0/10. Each installed peer is removed again (not timed) so the device stays as it was.
 * Prints one line per install: the wall time of sendmsg + recv of the ack, in nanoseconds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/wireguard.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "genl-message.h"

static void set_peer(struct message *m, uint16_t family, uint32_t seq, const char *ifname, const unsigned char key[32],
                     uint32_t index, int keepalive, int remove) {
  header(m, family, WG_CMD_SET_DEVICE, seq);
  put(m, WGDEVICE_A_IFNAME, ifname, strlen(ifname) + 1);
  struct nlattr *peers = nest(m, WGDEVICE_A_PEERS);
  struct nlattr *peer = nest(m, 0);
  put(m, WGPEER_A_PUBLIC_KEY, key, 32);
  if (remove) {
    uint32_t flags = WGPEER_F_REMOVE_ME;
    put(m, WGPEER_A_FLAGS, &flags, sizeof(flags));
  } else {
    uint32_t flags = WGPEER_F_REPLACE_ALLOWEDIPS;
    put(m, WGPEER_A_FLAGS, &flags, sizeof(flags));
    struct sockaddr_in endpoint = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(20000 + index % 40000))};
    endpoint.sin_addr.s_addr = htonl(0xC0000200u | (1 + index % 254)); /* 192.0.2.x */
    put(m, WGPEER_A_ENDPOINT, &endpoint, sizeof(endpoint));
    if (keepalive) {
      uint16_t interval = 25;
      put(m, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, &interval, sizeof(interval));
    }
    put_allowed_ipv4(m, htonl(0x64400000u | (index & 0x3fffff))); /* 100.64.0.0/10 */
  }
  end(m, peer);
  end(m, peers);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s IFNAME COUNT GAP_MS [--keepalive] [--keep] [--first-index I]\n", argv[0]);
    return 2;
  }
  const char *ifname = argv[1];
  long count = strtol(argv[2], NULL, 10);
  long gap_ms = strtol(argv[3], NULL, 10);
  int keepalive = 0, keep = 0;
  uint32_t first_index = 0;
  for (int a = 4; a < argc; a++) {
    if (strcmp(argv[a], "--keepalive") == 0) keepalive = 1;
    else if (strcmp(argv[a], "--keep") == 0) keep = 1;
    else if (strcmp(argv[a], "--first-index") == 0 && a + 1 < argc) first_index = (uint32_t)strtoul(argv[++a], NULL, 10);
    else {
      fprintf(stderr, "unknown argument %s\n", argv[a]);
      return 2;
    }
  }

  static struct message m;
  uint16_t family;
  int fd = open_wireguard_netlink(&family);

  uint32_t seq = 2;
  for (long i = 0; i < count; i++) {
    if (gap_ms > 0) {
      struct timespec gap = {.tv_sec = gap_ms / 1000, .tv_nsec = (gap_ms % 1000) * 1000000L};
      nanosleep(&gap, NULL);
    }
    unsigned char key[32];
    if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) die("getrandom");
    set_peer(&m, family, seq++, ifname, key, first_index + (uint32_t)i, keepalive, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int error = exchange(fd, &m, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (error) {
      fprintf(stderr, "install %ld: errno %d (%s)\n", i, error, strerror(error));
      return 1;
    }
    printf("%lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
    fflush(stdout);
    if (keep) continue;
    set_peer(&m, family, seq++, ifname, key, first_index + (uint32_t)i, 0, 1);
    error = exchange(fd, &m, NULL);
    if (error) {
      fprintf(stderr, "remove %ld: errno %d (%s)\n", i, error, strerror(error));
      return 1;
    }
  }
  close(fd);
  return 0;
}
