/**
 * Decodes a SOCKADDR record's `saddr=` hex: the raw struct sockaddr the process passed to
 * connect/bind/accept/sendto. `sa_family` (and netlink's pid and groups) are in the host's byte order,
 * while ports and IPv4/IPv6 addresses are in network order. The order comes from the event's
 * `arch=` (syscall-names.ts archByteOrder: s390x and ppc64 are big-endian); without one, a family
 * that is only known in one order tells it (a big-endian AF_INET read as little-endian is 512, no
 * family at all).
 */
import type { Sockaddr } from './event';
import { decodeHex, decodeSurrogateEscaped } from './bytes';

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const AF_NETLINK = 16;

export interface SockaddrResult {
  sockaddr: Sockaddr;
  /** True when the hex was malformed or shorter than the family needs (fields are then null). */
  malformed: boolean;
}

function empty(family: Sockaddr['family']): Sockaddr {
  return { family, path: null, addr: null, port: null };
}

const KNOWN_FAMILIES = new Set([AF_UNIX, AF_INET, AF_INET6, AF_NETLINK]);

/** Decodes `text[start, end)` (hex), in the host byte order `order` when known. Never throws. */
export function decodeSockaddr(text: string, start = 0, end = text.length, order: 'le' | 'be' | null = null): SockaddrResult {
  // An odd length means the record was cut; decode the whole bytes we have and flag it.
  const evenEnd = ((end - start) & 1) === 0 ? end : end - 1;
  const bytes = decodeHex(text, start, evenEnd);
  if (bytes === null || bytes.length < 2) return { sockaddr: empty(0), malformed: true };
  const oddLength = evenEnd !== end;
  const le = bytes.readUInt16LE(0);
  const be = bytes.readUInt16BE(0);
  const bigEndian = order === 'be' || (order === null && !KNOWN_FAMILIES.has(le) && KNOWN_FAMILIES.has(be));
  const family = bigEndian ? be : le;
  switch (family) {
    case AF_UNIX:
      return { sockaddr: unixAddr(bytes), malformed: oddLength };
    case AF_INET: {
      if (bytes.length < 8) return { sockaddr: empty('inet'), malformed: true };
      const addr = `${bytes[4]}.${bytes[5]}.${bytes[6]}.${bytes[7]}`;
      return { sockaddr: { family: 'inet', path: null, addr, port: bytes.readUInt16BE(2) }, malformed: oddLength };
    }
    case AF_INET6: {
      // sin6_port(2) sin6_flowinfo(4) sin6_addr(16) [sin6_scope_id(4)]
      if (bytes.length < 24) return { sockaddr: empty('inet6'), malformed: true };
      return {
        sockaddr: { family: 'inet6', path: null, addr: formatIPv6(bytes, 8), port: bytes.readUInt16BE(2) },
        malformed: oddLength,
      };
    }
    case AF_NETLINK: {
      // nl_pad(2) nl_pid(4, host order) nl_groups(4, host order)
      if (bytes.length < 12) return { sockaddr: empty('netlink'), malformed: true };
      return {
        sockaddr: {
          family: 'netlink',
          path: null,
          addr: null,
          port: null,
          pid: bigEndian ? bytes.readUInt32BE(4) : bytes.readUInt32LE(4),
          groups: bigEndian ? bytes.readUInt32BE(8) : bytes.readUInt32LE(8),
        },
        malformed: oddLength,
      };
    }
    default:
      return { sockaddr: empty(family), malformed: oddLength };
  }
}

function unixAddr(bytes: Buffer): Sockaddr {
  if (bytes.length <= 2) return { family: 'unix', path: null, addr: null, port: null }; // unnamed socket
  if (bytes[2] === 0) {
    // Abstract namespace: the name is every byte after the NUL (it may contain NULs itself).
    return { family: 'unix', path: '@' + decodeSurrogateEscaped(bytes, 3, bytes.length), addr: null, port: null };
  }
  let end = bytes.indexOf(0, 2);
  if (end < 0) end = bytes.length;
  return { family: 'unix', path: decodeSurrogateEscaped(bytes, 2, end), addr: null, port: null };
}

/** RFC 5952 text form: lower-case, longest run (>= 2) of zero groups compressed, IPv4-mapped dotted. */
export function formatIPv6(b: Uint8Array, off: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(((b[off + 2 * i] as number) << 8) | (b[off + 2 * i + 1] as number));
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `::ffff:${b[off + 12]}.${b[off + 13]}.${b[off + 14]}.${b[off + 15]}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) return groups.map((g) => g.toString(16)).join(':');
  const head = groups.slice(0, bestStart).map((g) => g.toString(16)).join(':');
  const tail = groups.slice(bestStart + bestLen).map((g) => g.toString(16)).join(':');
  return `${head}::${tail}`;
}
