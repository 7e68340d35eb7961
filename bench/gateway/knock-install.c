/*
 * The fastest just-in-time install a user-space process can make, as an anchor for
 * bench/gateway/jit-latency.ts: it sees a client's handshake initiation on an AF_PACKET socket
 * and at once sends the one-peer WG_CMD_SET_DEVICE that makes the kernel handshake back (the
 * initiation's source as endpoint, persistent keepalive 25 so the kernel initiates at once).
 *
 * It verifies nothing and looks nothing up: it is told the next client's key before that client
 * starts. What is left is everything a JIT gateway cannot avoid besides authenticating the
 * initiation: the capture wake-up, the install's system calls, and the kernel answering as
 * initiator (one more message and a keepalive before the client may send, against the push
 * model's response). The bench adds two measured X25519 to get the floor of any JIT gateway.
 *
 *   knock-install IFNAME LISTEN_PORT
 *
 * Reads lines "HEXKEY ALLOWED_IPV4" on stdin; for each, arms that peer, waits for the next
 * IPv4 UDP datagram to LISTEN_PORT whose payload is a 148-byte initiation (type 1), installs
 * the peer and prints "ok NS" (nanoseconds from the packet's receipt to the kernel's ack).
 * The peer is left in the kernel: the bench removes it with its client.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/genetlink.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/wireguard.h>
#include <net/ethernet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "genl-message.h"

#define INITIATION_LENGTH 148

static int hex_key(const char *hex, unsigned char key[32]) {
  for (int i = 0; i < 32; i++) {
    unsigned int byte;
    if (sscanf(hex + 2 * i, "%2x", &byte) != 1) return -1;
    key[i] = (unsigned char)byte;
  }
  return 0;
}

/* The install the gateway makes: endpoint, one allowed IPv4 /32, keepalive 25. */
static void install_message(struct message *m, uint16_t family, uint32_t seq, const char *ifname, const unsigned char key[32],
                            const struct sockaddr_in *endpoint, struct in_addr allowed) {
  header(m, family, WG_CMD_SET_DEVICE, seq);
  put(m, WGDEVICE_A_IFNAME, ifname, strlen(ifname) + 1);
  struct nlattr *peers = nest(m, WGDEVICE_A_PEERS);
  struct nlattr *peer = nest(m, 0);
  put(m, WGPEER_A_PUBLIC_KEY, key, 32);
  uint32_t flags = WGPEER_F_REPLACE_ALLOWEDIPS;
  put(m, WGPEER_A_FLAGS, &flags, sizeof(flags));
  put(m, WGPEER_A_ENDPOINT, endpoint, sizeof(*endpoint));
  uint16_t interval = 25;
  put(m, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, &interval, sizeof(interval));
  put_allowed_ipv4(m, allowed.s_addr);
  end(m, peer);
  end(m, peers);
}

/* Waits for an initiation to `port`; fills its source. Other packets are skipped. */
static void next_initiation(int fd, uint16_t port, struct sockaddr_in *source) {
  static unsigned char packet[2048];
  for (;;) {
    struct sockaddr_ll from;
    socklen_t fromlen = sizeof(from);
    ssize_t n = recvfrom(fd, packet, sizeof(packet), 0, (struct sockaddr *)&from, &fromlen);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("recvfrom");
    }
    if (from.sll_pkttype == PACKET_OUTGOING || n < (ssize_t)sizeof(struct iphdr)) continue;
    const struct iphdr *ip = (const struct iphdr *)packet;
    size_t ihl = (size_t)ip->ihl * 4;
    if (ip->version != 4 || ip->protocol != IPPROTO_UDP || (size_t)n < ihl + sizeof(struct udphdr) + INITIATION_LENGTH) continue;
    const struct udphdr *udp = (const struct udphdr *)(packet + ihl);
    const unsigned char *payload = packet + ihl + sizeof(struct udphdr);
    if (ntohs(udp->dest) != port || ntohs(udp->len) != sizeof(struct udphdr) + INITIATION_LENGTH) continue;
    if (payload[0] != 1 || payload[1] || payload[2] || payload[3]) continue;
    memset(source, 0, sizeof(*source));
    source->sin_family = AF_INET;
    source->sin_addr.s_addr = ip->saddr;
    source->sin_port = udp->source;
    return;
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s IFNAME LISTEN_PORT\n", argv[0]);
    return 2;
  }
  const char *ifname = argv[1];
  uint16_t port = (uint16_t)strtol(argv[2], NULL, 10);

  static struct message m;
  uint16_t family;
  int nl = open_wireguard_netlink(&family);

  /* Opened before the first key is read, so no initiation is missed once the bench is told "ready". */
  int capture = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_IP));
  if (capture < 0) die("socket(AF_PACKET)");
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("ready\n");

  char line[256];
  uint32_t seq = 2;
  while (fgets(line, sizeof(line), stdin)) {
    char hex[65], allowed_text[64];
    unsigned char key[32];
    struct in_addr allowed;
    if (sscanf(line, "%64s %63s", hex, allowed_text) != 2 || strlen(hex) != 64 || hex_key(hex, key) || inet_pton(AF_INET, allowed_text, &allowed) != 1) {
      fprintf(stderr, "bad line: %s", line);
      return 2;
    }
    /* Drop what queued while unarmed (earlier clients' retries, the gateway's own traffic). */
    unsigned char scratch[2048];
    while (recv(capture, scratch, sizeof(scratch), MSG_DONTWAIT) > 0) {
    }
    printf("armed\n");
    struct sockaddr_in source;
    next_initiation(capture, port, &source);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    install_message(&m, family, seq++, ifname, key, &source, allowed);
    int error = exchange(nl, &m, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (error) {
      fprintf(stderr, "install: errno %d (%s)\n", error, strerror(error));
      return 1;
    }
    printf("ok %lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
  }
  return 0;
}
