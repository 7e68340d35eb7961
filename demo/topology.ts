/**
 * The demo's network, built with ip(8), nft(8) and sysctl(8) only (independent of jitguard):
 *
 *                       this namespace (the operator: control plane, /metrics, admin API)
 *                         | jgd-ctl 198.51.100.2          control network 198.51.100.0/24
 *                         | ctl0    198.51.100.1
 *   jgd-gw    the gateway: `jitguard gateway` on wg0 (10.7.0.1/24), eth0 192.0.2.1, 2001:db8:1::1
 *                         | eth0
 *   jgd-net   "the Internet": one bridge, br0, with every host's eth0 as a port
 *       |-- jgd-ipv4      eth0 192.0.2.11                 a kernel WireGuard client over IPv4
 *       |-- jgd-ipv6      eth0 2001:db8:1::12 (no IPv4)   over IPv6
 *       |-- jgd-nat       eth0 192.0.2.13, lan0 192.168.1.1: masquerades onto ports 10000-10100
 *       |     `-- jgd-home   eth0 192.168.1.2             a client behind that NAT
 *       |-- jgd-ws        eth0 192.0.2.14, outgoing UDP dropped (nft): WireGuard over WebSocket
 *       |-- jgd-stranger  eth0 192.0.2.15                 a real client the control plane does not know
 *       `-- jgd-forger    eth0 192.0.2.16                 sends a forged initiation
 *
 * The gateway's capture listens on its eth0 only: WebSocket clients' initiations reach the
 * daemon through its relay (over loopback), and capturing loopback too would show the daemon
 * each of them twice.
 */
export const GATEWAY = {
  namespace: 'jgd-gw',
  v4: '192.0.2.1',
  v6: '2001:db8:1::1',
  control: '198.51.100.1',
  tunnel: '10.7.0.1',
  listenPort: 51820,
  websocketPort: 443,
  metricsPort: 9100,
  adminPort: 9101,
} as const;

export const OPERATOR = { control: '198.51.100.2', controlPlanePort: 8080 } as const;

export const INTERNET = 'jgd-net';
export const NAT = { namespace: 'jgd-nat', outside: '192.0.2.13', inside: '192.168.1.1', ports: { min: 10000, max: 10100 } } as const;
export const HOME = { namespace: 'jgd-home', address: '192.168.1.2' } as const;

/** A host on the bridge: its namespace, the bridge port's name, its addresses. */
interface Host {
  namespace: string;
  port: string;
  addresses: string[];
}

export const HOSTS: readonly Host[] = [
  { namespace: GATEWAY.namespace, port: 'gw', addresses: [`${GATEWAY.v4}/24`, `${GATEWAY.v6}/64`] },
  { namespace: 'jgd-ipv4', port: 'ipv4', addresses: ['192.0.2.11/24'] },
  { namespace: 'jgd-ipv6', port: 'ipv6', addresses: ['2001:db8:1::12/64'] },
  { namespace: NAT.namespace, port: 'nat', addresses: [`${NAT.outside}/24`] },
  { namespace: 'jgd-ws', port: 'ws', addresses: ['192.0.2.14/24'] },
  { namespace: 'jgd-stranger', port: 'stranger', addresses: ['192.0.2.15/24'] },
  { namespace: 'jgd-forger', port: 'forger', addresses: ['192.0.2.16/24'] },
];

export const NAMESPACES: readonly string[] = [INTERNET, ...HOSTS.map((h) => h.namespace), HOME.namespace];
const CONTROL_LINK = 'jgd-ctl';

/**
 * Lines for ip(8)'s batch mode, in one namespace (or this one): one ip process for many
 * commands, because each process start costs a few hundred milliseconds in the TCG VM.
 */
function batch(namespace: string | null, lines: readonly string[]): string[] {
  return [`ip ${namespace !== null ? `-n ${namespace} ` : ''}-batch - <<'EOF'`, ...lines, 'EOF'];
}

/** Removes everything the demo creates; safe to run when none of it exists. */
export function teardownLines(): string[] {
  return [
    `ip -force -batch - 2>/dev/null <<'EOF' || true`,
    ...NAMESPACES.map((ns) => `netns del ${ns}`),
    `link del ${CONTROL_LINK}`,
    'EOF',
  ];
}

/** A host's side of its link to the bridge, as batch lines inside its namespace. */
function hostLines(host: Host): string[] {
  return [
    'link set lo up',
    // nodad: an IPv6 address is usable at once instead of after duplicate detection.
    ...host.addresses.map((a) => `addr add ${a} dev eth0${a.includes(':') ? ' nodad' : ''}`),
    'link set eth0 up',
  ];
}

/**
 * Every namespace and link, the bridge, and the gateway's side: what `jitguard gateway` needs
 * before it starts (its capture interface, the control network). Removes first what an
 * interrupted run left behind.
 */
export function gatewaySideLines(): string[] {
  const [gateway] = HOSTS;
  return [
    ...teardownLines(),
    ...batch(null, [
      ...NAMESPACES.map((ns) => `netns add ${ns}`),
      ...HOSTS.map((h) => `link add eth0 netns ${h.namespace} type veth peer name ${h.port} netns ${INTERNET}`),
      `link add eth0 netns ${HOME.namespace} type veth peer name lan0 netns ${NAT.namespace}`,
      // The control network: the operator's side stays in this namespace.
      `link add ${CONTROL_LINK} type veth peer name ctl0 netns ${GATEWAY.namespace}`,
      `addr add ${OPERATOR.control}/24 dev ${CONTROL_LINK}`,
      `link set ${CONTROL_LINK} up`,
    ]),
    ...batch(INTERNET, [
      'link set lo up',
      'link add br0 type bridge',
      'link set br0 up',
      ...HOSTS.map((h) => `link set ${h.port} master br0 up`),
    ]),
    ...batch(GATEWAY.namespace, [...hostLines(gateway!), `addr add ${GATEWAY.control}/24 dev ctl0`, 'link set ctl0 up']),
    // The relay listens on 443 as an unprivileged user: allowed in this namespace only, rather
    // than giving the daemon CAP_NET_BIND_SERVICE (the README's systemd unit does that instead).
    `ip netns exec ${GATEWAY.namespace} sysctl -qw net.ipv4.ip_unprivileged_port_start=${GATEWAY.websocketPort}`,
  ];
}

/**
 * The clients' side: their links and addresses, the NAT, the UDP-blocking firewall, and
 * `extra[namespace]`: more batch lines for that namespace (the clients' wg0).
 */
export function clientSideLines(extra: ReadonlyMap<string, readonly string[]>): string[] {
  const more = (ns: string) => extra.get(ns) ?? [];
  return [
    ...HOSTS.slice(1).flatMap((h) => batch(h.namespace, [...hostLines(h), ...(h.namespace === NAT.namespace ? [`addr add ${NAT.inside}/24 dev lan0`, 'link set lan0 up'] : []), ...more(h.namespace)])),
    ...batch(HOME.namespace, ['link set lo up', `addr add ${HOME.address}/24 dev eth0`, 'link set eth0 up', `route add default via ${NAT.inside}`, ...more(HOME.namespace)]),
    // The home router: forwards, and masquerades onto a port range the client does not use, so
    // the gateway must see, and install, the translated address and port (it has no route to
    // 192.168.1.0/24).
    `ip netns exec ${NAT.namespace} sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward && nft -f -' <<'EOF'`,
    'table ip nat {',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname "eth0" meta l4proto { tcp, udp } masquerade to :${NAT.ports.min}-${NAT.ports.max}`,
    '    oifname "eth0" masquerade',
    '  }',
    '}',
    'EOF',
    // A network that blocks UDP (as some corporate and hotel networks do): only loopback
    // carries it, so WireGuard gets out only through `jitguard ws-connect`.
    `ip netns exec jgd-ws nft -f - <<'EOF'`,
    'table inet no-udp {',
    '  chain output {',
    '    type filter hook output priority filter; policy accept;',
    '    oifname != "lo" meta l4proto udp drop',
    '  }',
    '}',
    'EOF',
  ];
}
