/*
 * The system-call floor of a just-in-time install: one long-running process sending one-peer
 * WG_CMD_SET_DEVICE messages, each the install the gateway makes (a new peer with an endpoint,
 * one allowed IP and, with --keepalive, a persistent keepalive so the kernel initiates at once),
 * each followed by its ack. Nothing but the netlink message: no validation, no encoding
 * framework, no thread hop. Used as an anchor by bench/gateway/jit-latency.ts.
 *
 *   install-floor IFNAME COUNT GAP_MS [--keepalive]
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

#define ALIGN4(n) (((n) + 3u) & ~3u)

struct message {
  unsigned char buf[1024];
  size_t len;
};

static void die(const char *what) {
  perror(what);
  exit(1);
}

static struct nlattr *put(struct message *m, uint16_t type, const void *data, size_t len) {
  struct nlattr *a = (struct nlattr *)(m->buf + m->len);
  a->nla_type = type;
  a->nla_len = (uint16_t)(NLA_HDRLEN + len);
  if (len) memcpy((unsigned char *)a + NLA_HDRLEN, data, len);
  m->len += ALIGN4(NLA_HDRLEN + len);
  return a;
}

static struct nlattr *nest(struct message *m, uint16_t type) {
  return put(m, type | NLA_F_NESTED, NULL, 0);
}

static void end(struct message *m, struct nlattr *a) {
  a->nla_len = (uint16_t)((m->buf + m->len) - (unsigned char *)a);
}

static void header(struct message *m, uint16_t family, uint8_t cmd, uint32_t seq) {
  memset(m->buf, 0, sizeof(m->buf));
  struct nlmsghdr *h = (struct nlmsghdr *)m->buf;
  h->nlmsg_type = family;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  h->nlmsg_seq = seq;
  struct genlmsghdr *g = (struct genlmsghdr *)(m->buf + NLMSG_HDRLEN);
  g->cmd = cmd;
  g->version = 1;
  m->len = NLMSG_HDRLEN + GENL_HDRLEN;
}

/* Sends the message and reads until its ack (or error); returns the errno the kernel gave. */
static int exchange(int fd, struct message *m, unsigned char *reply, size_t reply_size, uint16_t *family_out) {
  ((struct nlmsghdr *)m->buf)->nlmsg_len = (uint32_t)m->len;
  if (send(fd, m->buf, m->len, 0) < 0) die("send");
  for (;;) {
    ssize_t n = recv(fd, reply, reply_size, 0);
    if (n < 0) die("recv");
    for (struct nlmsghdr *h = (struct nlmsghdr *)reply; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_ERROR) return -((struct nlmsgerr *)NLMSG_DATA(h))->error;
      if (family_out && h->nlmsg_type == GENL_ID_CTRL) {
        struct nlattr *a = (struct nlattr *)((unsigned char *)NLMSG_DATA(h) + GENL_HDRLEN);
        int left = (int)h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
        for (; left >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN; left -= ALIGN4(a->nla_len), a = (struct nlattr *)((unsigned char *)a + ALIGN4(a->nla_len))) {
          if (a->nla_type == CTRL_ATTR_FAMILY_ID) memcpy(family_out, (unsigned char *)a + NLA_HDRLEN, 2);
        }
      }
    }
  }
}

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
    struct nlattr *ips = nest(m, WGPEER_A_ALLOWEDIPS);
    struct nlattr *ip = nest(m, 0);
    uint16_t af = AF_INET;
    uint8_t cidr = 32;
    uint32_t address = htonl(0x64400000u | (index & 0x3fffff)); /* 100.64.0.0/10 */
    put(m, WGALLOWEDIP_A_FAMILY, &af, sizeof(af));
    put(m, WGALLOWEDIP_A_IPADDR, &address, sizeof(address));
    put(m, WGALLOWEDIP_A_CIDR_MASK, &cidr, sizeof(cidr));
    end(m, ip);
    end(m, ips);
  }
  end(m, peer);
  end(m, peers);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s IFNAME COUNT GAP_MS [--keepalive]\n", argv[0]);
    return 2;
  }
  const char *ifname = argv[1];
  long count = strtol(argv[2], NULL, 10);
  long gap_ms = strtol(argv[3], NULL, 10);
  int keepalive = argc > 4 && strcmp(argv[4], "--keepalive") == 0;

  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
  if (fd < 0) die("socket");
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) die("bind");

  static struct message m;
  static unsigned char reply[65536];
  uint16_t family = 0;
  header(&m, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1);
  put(&m, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME, sizeof(WG_GENL_NAME));
  int error = exchange(fd, &m, reply, sizeof(reply), &family);
  if (error || family == 0) {
    fprintf(stderr, "the wireguard generic netlink family is not available (errno %d)\n", error);
    return 1;
  }

  uint32_t seq = 2;
  for (long i = 0; i < count; i++) {
    if (gap_ms > 0) {
      struct timespec gap = {.tv_sec = gap_ms / 1000, .tv_nsec = (gap_ms % 1000) * 1000000L};
      nanosleep(&gap, NULL);
    }
    unsigned char key[32];
    if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) die("getrandom");
    set_peer(&m, family, seq++, ifname, key, (uint32_t)i, keepalive, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    error = exchange(fd, &m, reply, sizeof(reply), NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (error) {
      fprintf(stderr, "install %ld: errno %d (%s)\n", i, error, strerror(error));
      return 1;
    }
    printf("%lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
    fflush(stdout);
    set_peer(&m, family, seq++, ifname, key, (uint32_t)i, 0, 1);
    error = exchange(fd, &m, reply, sizeof(reply), NULL);
    if (error) {
      fprintf(stderr, "remove %ld: errno %d (%s)\n", i, error, strerror(error));
      return 1;
    }
  }
  close(fd);
  return 0;
}
