/*
 * capture-sender: sends prepared IP packets out of an interface as fast as asked, bypassing
 * the local IP stack (AF_PACKET, SOCK_DGRAM: the kernel adds the Ethernet header). Used by the
 * privileged capture tests and bench/capture.ts, only ever inside network namespaces they
 * create.
 *
 *   capture-sender IFNAME DST-MAC PACKETS-FILE COUNT DURATION-MS RATE-PPS
 *
 * PACKETS-FILE: one packet per line, "<ethertype hex> <packet hex>" (e.g. "0800 4500...").
 * The packets are sent in order, cycling, until COUNT packets (0: no limit) have been sent or
 * DURATION-MS (0: no limit) has passed, at most RATE-PPS per second (0: as fast as possible).
 * Packets go out in sendmmsg() batches of up to 64; ENOBUFS (a full device queue) is retried. Prints "sent N" and exits 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct packet {
  uint16_t protocol;
  size_t length;
  unsigned char *bytes;
};

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s IFNAME DST-MAC PACKETS-FILE COUNT DURATION-MS RATE-PPS\n", argv[0]);
    return 2;
  }
  unsigned int ifindex = if_nametoindex(argv[1]);
  if (ifindex == 0) { perror("if_nametoindex"); return 1; }
  unsigned int mac[6];
  if (sscanf(argv[2], "%x:%x:%x:%x:%x:%x", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) != 6) {
    fprintf(stderr, "bad MAC %s\n", argv[2]);
    return 2;
  }
  uint64_t count = strtoull(argv[4], NULL, 10);
  uint64_t duration_ns = strtoull(argv[5], NULL, 10) * 1000000ull;
  uint64_t rate = strtoull(argv[6], NULL, 10);

  FILE *file = fopen(argv[3], "r");
  if (file == NULL) { perror("fopen"); return 1; }
  struct packet *packets = NULL;
  size_t npackets = 0;
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, file) > 0) {
    char *space = strchr(line, ' ');
    if (space == NULL) continue;
    struct packet p;
    p.protocol = (uint16_t)strtoul(line, NULL, 16);
    char *hex = space + 1;
    size_t n = strcspn(hex, "\r\n");
    p.length = n / 2;
    p.bytes = malloc(p.length + 1);
    for (size_t i = 0; i < p.length; i++) {
      int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
      if (hi < 0 || lo < 0) { fprintf(stderr, "bad hex\n"); return 2; }
      p.bytes[i] = (unsigned char)(hi << 4 | lo);
    }
    packets = realloc(packets, (npackets + 1) * sizeof(*packets));
    packets[npackets++] = p;
  }
  fclose(file);
  if (npackets == 0) { fprintf(stderr, "no packets\n"); return 2; }

  int fd = socket(AF_PACKET, SOCK_DGRAM, 0);
  if (fd < 0) { perror("socket"); return 1; }
  int sndbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf));

  struct sockaddr_ll to;
  memset(&to, 0, sizeof(to));
  to.sll_family = AF_PACKET;
  to.sll_ifindex = (int)ifindex;
  to.sll_halen = 6;
  for (int i = 0; i < 6; i++) to.sll_addr[i] = (unsigned char)mac[i];

  // Up to 64 packets per sendmmsg() call: as many as are due at the requested rate.
  enum { kBatch = 64 };
  struct mmsghdr messages[kBatch];
  struct iovec iov[kBatch];
  uint64_t start = now_ns();
  uint64_t sent = 0;
  size_t next = 0;
  for (;;) {
    if (count != 0 && sent >= count) break;
    uint64_t t = now_ns();
    if (duration_ns != 0 && t - start >= duration_ns) break;
    uint64_t due = kBatch;
    if (rate != 0) {
      uint64_t allowed = (t - start) * rate / 1000000000ull + 1;
      due = allowed > sent ? allowed - sent : 0;
      if (due == 0) {
        uint64_t wait = start + sent * 1000000000ull / rate - t;
        if (wait > 50000) {
          struct timespec ts = {0, (long)(wait > 1000000 ? 1000000 : wait)};
          nanosleep(&ts, NULL);
        }
        continue;
      }
      if (due > kBatch) due = kBatch;
    }
    if (count != 0 && due > count - sent) due = count - sent;
    // One protocol per call (sll_protocol is per destination address): stop the batch where
    // the ethertype changes.
    uint16_t protocol = packets[next].protocol;
    unsigned int n = 0;
    for (; n < due; n++) {
      struct packet *p = &packets[(next + n) % npackets];
      if (p->protocol != protocol) break;
      iov[n].iov_base = p->bytes;
      iov[n].iov_len = p->length;
      memset(&messages[n], 0, sizeof(messages[n]));
      messages[n].msg_hdr.msg_name = &to;
      messages[n].msg_hdr.msg_namelen = sizeof(to);
      messages[n].msg_hdr.msg_iov = &iov[n];
      messages[n].msg_hdr.msg_iovlen = 1;
    }
    to.sll_protocol = htons(protocol);
    int done = sendmmsg(fd, messages, n, 0);
    if (done < 0) {
      if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) { sched_yield(); continue; }
      perror("sendmmsg");
      return 1;
    }
    sent += (uint64_t)done;
    next = (next + (size_t)done) % npackets;
  }
  printf("sent %llu\n", (unsigned long long)sent);
  return 0;
}
