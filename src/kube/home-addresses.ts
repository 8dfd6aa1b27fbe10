/**
 * Is a request's peer address one of its token's home addresses (FindingTokenHome)? Used by the
 * agent's token trail, its away-from-node detector and the collector's fleet join, so all three say the
 * same. Comparison is on the binary address (net.BlockList), not the text: the API server writes IPv6
 * compressed, /proc writes it in full, and an IPv4-mapped IPv6 peer is its IPv4 address.
 */
import { BlockList, isIP } from 'node:net';
import type { FindingTokenHome } from '../model/finding';

export type AddressFamily = 'ipv4' | 'ipv6';

export function addressFamily(ip: string): AddressFamily | null {
  const v = isIP(ip);
  return v === 4 ? 'ipv4' : v === 6 ? 'ipv6' : null;
}

/** A set of addresses; text that is not an address is skipped (the lists come from other agents). */
export class AddressSet {
  private readonly list = new BlockList();
  private n = 0;

  constructor(addrs: Iterable<string> = []) {
    for (const a of addrs) this.add(a);
  }

  /** False when `ip` is not an address. */
  add(ip: string): boolean {
    const family = addressFamily(ip);
    if (family === null) return false;
    this.list.addAddress(ip, family);
    this.n++;
    return true;
  }

  has(ip: string): boolean {
    const family = addressFamily(ip);
    return family !== null && this.n > 0 && this.list.check(ip, family);
  }

  get size(): number {
    return this.n;
  }
}

/** The home of a read as one set: the node's addresses and the pod's. */
export function homeSet(home: FindingTokenHome): AddressSet {
  return new AddressSet([...home.node, ...(home.pod ?? [])]);
}

/**
 * Whether `peer` is away from `home`: true (none of its addresses), false (one of them), null (no
 * home known, or no usable peer: nothing can be said).
 */
export function awayFromHome(home: AddressSet | null, peer: string | null): boolean | null {
  if (home === null || home.size === 0 || peer === null || addressFamily(peer) === null) return null;
  return !home.has(peer);
}
