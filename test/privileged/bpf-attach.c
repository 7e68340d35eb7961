/*
 * bpf-attach: asks the running kernel what it makes of classic-BPF programs, for the
 * privileged comparison with lib/capture/bpf-interpreter.ts.
 *
 *   bpf-attach < CASES
 *
 * CASES: one case per line, "<program hex> <packet hex>" (the program as struct sock_filter[]
 * in host byte order, "-" for an empty one; the packet may be "-" for none). For each case the program is attached
 * with SO_ATTACH_FILTER to the receiving end of a fresh AF_UNIX datagram socket pair (the same
 * checker as for any socket: net/core/filter.c, sk_attach_filter), then the packet is sent
 * through it. A socket filter's return value is the number of bytes kept (0 drops), so the
 * length received is min(return value, packet length). One output line per case:
 *   refused <errno>       SO_ATTACH_FILTER failed (the errno number: 22 is EINVAL)
 *   accepted dropped      attached; the packet was dropped (the program returned 0)
 *   accepted <n>          attached; n bytes of the packet arrived
 *   accepted -            attached; no packet given
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes hex in place; returns the byte count, or -1 for malformed hex. */
static long unhex(char *text) {
  size_t n = strlen(text);
  if (n % 2 != 0) return -1;
  for (size_t i = 0; i < n; i += 2) {
    int hi = hexval(text[i]), lo = hexval(text[i + 1]);
    if (hi < 0 || lo < 0) return -1;
    text[i / 2] = (char)(hi * 16 + lo);
  }
  return (long)(n / 2);
}

int main(void) {
  static char line[1 << 20];
  static char received[65536];
  while (fgets(line, sizeof(line), stdin) != NULL) {
    char *program = strtok(line, " \n");
    char *packet = strtok(NULL, " \n");
    if (program == NULL || packet == NULL) {
      fprintf(stderr, "bad line\n");
      return 2;
    }
    long program_bytes = strcmp(program, "-") == 0 ? 0 : unhex(program);
    long packet_bytes = strcmp(packet, "-") == 0 ? -1 : unhex(packet);
    if (program_bytes < 0 || program_bytes % sizeof(struct sock_filter) != 0 || (strcmp(packet, "-") != 0 && packet_bytes < 1)) {
      fprintf(stderr, "bad case\n");
      return 2;
    }
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair) != 0) {
      perror("socketpair");
      return 1;
    }
    struct sock_fprog fprog = {
        .len = (unsigned short)(program_bytes / sizeof(struct sock_filter)),
        .filter = (struct sock_filter *)program,
    };
    if (program_bytes / sizeof(struct sock_filter) > 0xffff) fprog.len = 0; /* cannot be expressed: let the kernel refuse 0 */
    if (setsockopt(pair[1], SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog)) != 0) {
      printf("refused %d\n", errno);
    } else if (packet_bytes < 0) {
      printf("accepted -\n");
    } else {
      if (send(pair[0], packet, (size_t)packet_bytes, 0) != packet_bytes) {
        perror("send");
        return 1;
      }
      ssize_t n = recv(pair[1], received, sizeof(received), MSG_DONTWAIT | MSG_TRUNC);
      if (n < 0 && errno == EAGAIN) printf("accepted dropped\n");
      else if (n < 0) {
        perror("recv");
        return 1;
      } else printf("accepted %zd\n", n);
    }
    close(pair[0]);
    close(pair[1]);
  }
  return 0;
}
