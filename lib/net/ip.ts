/**
 * IP addresses, CIDR prefixes and endpoints as the WireGuard API takes and returns them:
 * strings at the API ("10.0.0.7/32", "[fd00::7]:51820"), bytes on the wire.
 */
export type Family = 4 | 6;

export interface Address {
  family: Family;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

/**
 * Parses dotted-quad IPv4 ("192.0.2.7": four decimal parts 0..255, no leading zeros) without
 * regular expressions or intermediate arrays: a gateway parses one per peer, 10^5 at a time.
 */
function parseIPv4(text: string): Uint8Array | null {
  const bytes = new Uint8Array(4);
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; // a final '.' closes the last part
    if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return null; // leading zero
      value = value * 10 + (c - 48);
      if (++digits > 3 || value > 255) return null;
    } else if (c === 46 && digits > 0 && part < 4) {
      bytes[part++] = value;
      value = 0;
      digits = 0;
    } else {
      return null;
    }
  }
  return part === 4 ? bytes : null;
}

/**
 * Parses the text forms of RFC 4291 §2.2 (eight groups of one to four hex digits, at most one
 * "::" for a run of zero groups, an optional dotted IPv4 tail for the last 32 bits) in one pass,
 * without regular expressions: `net.isIPv6`'s regular expression costs 51 ms to compile on its
 * first use in the TCG test VM, and the first IPv6 knock of a gateway paid it on the event loop
 * (bench/gateway, switchover profile, 2026-12-02). Zones ("%eth0") are refused.
 */
function parseIPv6(text: string): Uint8Array | null {
  const bytes = new Uint8Array(16);
  const n = text.length;
  if (n < 2 || n > 45) return null; // "::" .. "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
  let groups = 0; // 16-bit groups written so far
  let gap = -1; // the group index where "::" stands
  let i = 0;
  if (text.charCodeAt(0) === 58) {
    if (text.charCodeAt(1) !== 58) return null; // a lone leading ':'
    gap = 0;
    i = 2;
    if (i === n) return bytes;
  }
  for (;;) {
    // One group (or the dotted tail) starting at i.
    let value = 0;
    let digits = 0;
    const groupStart = i;
    while (i < n && digits <= 4) {
      const d = hexDigit(text.charCodeAt(i));
      if (d < 0) break;
      value = (value << 4) | d;
      digits++;
      i++;
    }
    if (i < n && text.charCodeAt(i) === 46) {
      // A dotted IPv4 tail: the rest of the text, two groups, only where the last 32 bits are.
      if (groups > 6) return null;
      const v4 = parseIPv4(text.slice(groupStart));
      if (v4 === null) return null;
      bytes.set(v4, groups * 2);
      groups += 2;
      break;
    }
    if (digits === 0 || digits > 4 || groups === 8) return null;
    bytes[groups * 2] = value >> 8;
    bytes[groups * 2 + 1] = value & 0xff;
    groups++;
    if (i === n) break;
    if (text.charCodeAt(i) !== 58) return null; // not hex, '.', or ':'
    i++;
    if (i < n && text.charCodeAt(i) === 58) {
      if (gap >= 0) return null; // a second "::"
      gap = groups;
      i++;
      if (i === n) break;
    } else if (i === n) {
      return null; // a trailing lone ':'
    }
  }
  if (gap < 0) return groups === 8 ? bytes : null;
  if (groups > 7) return null; // "::" stands for at least one zero group
  // Move the groups after the gap to the end; the gap is zeros.
  const tail = (groups - gap) * 2;
  bytes.copyWithin(16 - tail, gap * 2, groups * 2);
  bytes.fill(0, gap * 2, 16 - tail);
  return bytes;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Parses a numeric IPv4 or IPv6 address (no zone); returns null when it is neither. */
export function parseAddress(text: string): Address | null {
  const v4 = parseIPv4(text);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = parseIPv6(text);
  return v6 ? { family: 6, bytes: v6 } : null;
}

/** Formats bytes as inet_ntop(3) does (RFC 5952 for IPv6, dotted tail for IPv4-mapped). */
export function formatAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${Array.from(bytes.subarray(12)).join('.')}`;
  }
  // The longest run of two or more zero words becomes "::" (the first, on a tie).
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (bestStart === -1) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLength))}`;
}

export interface Prefix extends Address {
  length: number;
}

/** Zeroes the host bits below `length`, in place. */
export function maskHostBits(bytes: Uint8Array, length: number): void {
  for (let bit = length; bit < bytes.length * 8; bit++) {
    const index = bit >> 3;
    bytes[index] = (bytes[index] ?? 0) & ~(0x80 >> (bit & 7));
  }
}

/** Parses "a.b.c.d/n" or "x::y/n"; a bare address means a host prefix (/32 or /128). */
export function parsePrefix(text: string): Prefix | string {
  const slash = text.indexOf('/');
  const address = parseAddress(slash === -1 ? text : text.slice(0, slash));
  if (!address) return 'expected an IPv4 or IPv6 prefix such as "10.0.0.7/32" or "fd00::/64"';
  const max = address.family === 4 ? 32 : 128;
  if (slash === -1) return { family: address.family, bytes: address.bytes, length: max };
  const length = parsePrefixLength(text, slash + 1);
  if (length < 0 || length > max) return `prefix length must be an integer from 0 to ${max}`;
  return { family: address.family, bytes: address.bytes, length };
}

/** The 1 to 3 decimal digits from `start` to the end of `text` as a number, or -1. */
function parsePrefixLength(text: string, start: number): number {
  const digits = text.length - start;
  if (digits < 1 || digits > 3) return -1;
  let value = 0;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    value = value * 10 + c;
  }
  return value;
}

export function formatPrefix(prefix: Prefix): string {
  return `${formatAddress(prefix.bytes)}/${prefix.length}`;
}

export interface Endpoint extends Address {
  port: number;
  /** IPv6 zone (interface index) for link-local endpoints; 0 when none. */
  scopeId: number;
}

/** Parses "a.b.c.d:port" or "[x::y]:port" / "[fe80::1%3]:port" (numeric zone only). */
export function parseEndpoint(text: string): Endpoint | string {
  let host: string;
  let portText: string;
  let scopeId = 0;
  let v4: Uint8Array | null = null;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1 || text[close + 1] !== ':') return 'expected "[ipv6]:port"';
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    const percent = host.indexOf('%');
    if (percent !== -1) {
      const zone = host.slice(percent + 1);
      if (!/^\d+$/.test(zone) || Number(zone) > 0xffffffff) return 'IPv6 zone must be a numeric interface index';
      scopeId = Number(zone);
      host = host.slice(0, percent);
    }
    if (parseIPv6(host) === null) return 'expected "[ipv6]:port" with a numeric IPv6 address';
  } else {
    const colon = text.lastIndexOf(':');
    if (colon === -1) return 'endpoint needs a port: expected "ip:port" or "[ipv6]:port"';
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    v4 = parseIPv4(host);
    if (v4 === null) {
      return parseIPv6(host) !== null ? 'IPv6 endpoints need brackets: "[ipv6]:port"' : 'expected a numeric "ip:port" (host names are not resolved)';
    }
  }
  const port = parsePort(portText);
  if (port === 0) return 'port must be an integer from 1 to 65535';
  const address: Address | null = v4 ? { family: 4, bytes: v4 } : parseAddress(host);
  if (!address) return 'expected a numeric IP address';
  return { family: address.family, bytes: address.bytes, port, scopeId };
}

/** Decimal 1..65535 without sign, spaces or leading zeros; 0 when it is not one. */
function parsePort(text: string): number {
  if (text.length === 0 || text.length > 5 || (text.length > 1 && text.charCodeAt(0) === 48)) return 0;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return 0;
    value = value * 10 + (c - 48);
  }
  return value <= 65535 ? value : 0;
}

export function formatEndpoint(endpoint: Endpoint): string {
  const host = formatAddress(endpoint.bytes);
  if (endpoint.family === 4) return `${host}:${endpoint.port}`;
  return `[${host}${endpoint.scopeId ? `%${endpoint.scopeId}` : ''}]:${endpoint.port}`;
}
