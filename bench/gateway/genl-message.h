/*
 * What bench/gateway/install-floor.c and knock-install.c share: building one generic netlink
 * message in a fixed buffer, sending it and reading to its ack, and finding the wireguard
 * family. Raw sockets and the uapi headers only, so that the anchors measure the system calls
 * and nothing of any library.
 */
#ifndef JITGUARD_BENCH_GENL_MESSAGE_H
#define JITGUARD_BENCH_GENL_MESSAGE_H

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/wireguard.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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

/* WGPEER_A_ALLOWEDIPS holding one IPv4 /32 (`address` in network order). */
static void put_allowed_ipv4(struct message *m, uint32_t address) {
  struct nlattr *ips = nest(m, WGPEER_A_ALLOWEDIPS);
  struct nlattr *ip = nest(m, 0);
  uint16_t af = AF_INET;
  uint8_t cidr = 32;
  put(m, WGALLOWEDIP_A_FAMILY, &af, sizeof(af));
  put(m, WGALLOWEDIP_A_IPADDR, &address, sizeof(address));
  put(m, WGALLOWEDIP_A_CIDR_MASK, &cidr, sizeof(cidr));
  end(m, ip);
  end(m, ips);
}

/* Sends the message and reads until its ack (or error); returns the errno the kernel gave. */
static int exchange(int fd, struct message *m, uint16_t *family_out) {
  static unsigned char reply[65536];
  ((struct nlmsghdr *)m->buf)->nlmsg_len = (uint32_t)m->len;
  if (send(fd, m->buf, m->len, 0) < 0) die("send");
  for (;;) {
    ssize_t n = recv(fd, reply, sizeof(reply), 0);
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

/* A bound generic netlink socket and the wireguard family's id; exits when there is none. */
static int open_wireguard_netlink(uint16_t *family) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
  if (fd < 0) die("socket(netlink)");
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) die("bind(netlink)");
  static struct message m;
  *family = 0;
  header(&m, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1);
  put(&m, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME, sizeof(WG_GENL_NAME));
  int error = exchange(fd, &m, family);
  if (error || *family == 0) {
    fprintf(stderr, "the wireguard generic netlink family is not available (errno %d)\n", error);
    exit(1);
  }
  return fd;
}

#endif
