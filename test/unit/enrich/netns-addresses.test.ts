import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NetnsHomes, parseFibTrieLocal, parseIfInet6 } from '../../../src/enrich/netns-addresses';
import type { FindingToken } from '../../../src/model/finding';
import { makeFinding } from '../ship/support';

const UID = '7d3f4c2a-1b5e-4c8d-9f0a-2e6b8c4d1a35';
const CID = 'af54a767e6019c818daec3e1a8ed2787511f6aaf3b24cadbf5397fc6f761edf3';

/** A fib_trie text listing these local addresses (plus loopback and the routes around them). */
function fibTrie(addrs: string[]): string {
  const leaves = addrs.map((a) => `        +-- ${a.replace(/\.\d+$/, '.0')}/24 2 0 2\n           |-- ${a.replace(/\.\d+$/, '.0')}\n              /24 link UNICAST\n           |-- ${a}\n              /32 host LOCAL\n`).join('');
  const table = `  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     +-- 127.0.0.0/8 2 0 2\n           |-- 127.0.0.1\n              /32 host LOCAL\n        |-- 127.255.255.255\n           /32 link BROADCAST\n${leaves}`;
  return `Main:\n${table}Local:\n${table}`;
}

const IF_INET6 = [
  '00000000000000000000000000000001 01 80 10 80       lo',
  'fe8000000000000000fc00fffe000001 04 40 20 80     eth0',
  'fd000000000000000000000000000002 04 40 00 82     eth0',
].join('\n');

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A fake /proc and cgroup tree: pid 1 (the node), pids of the pod's container, another pod's pid. */
function fakeHost(opts: { podAddrs: string[]; podPids?: number[] }) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-netns-'));
  dirs.push(root);
  const proc = path.join(root, 'proc');
  const cg = path.join(root, 'cgroup');
  const writePid = (pid: number, cgroup: string, v4: string[], v6 = ''): void => {
    fs.mkdirSync(path.join(proc, String(pid), 'net'), { recursive: true });
    fs.writeFileSync(path.join(proc, String(pid), 'cgroup'), `0::${cgroup}\n`);
    fs.writeFileSync(path.join(proc, String(pid), 'net', 'fib_trie'), fibTrie(v4));
    fs.writeFileSync(path.join(proc, String(pid), 'net', 'if_inet6'), v6);
  };
  writePid(1, '/init.scope', ['192.0.2.11', '10.244.1.1'], IF_INET6);
  const podCg = `/kubepods/besteffort/pod${UID}/${CID}`;
  fs.mkdirSync(path.join(cg, podCg), { recursive: true });
  const pids = opts.podPids ?? [4242];
  fs.writeFileSync(path.join(cg, podCg, 'cgroup.procs'), pids.map((p) => `${p}\n`).join(''));
  for (const p of pids) writePid(p, podCg, opts.podAddrs);
  // A pid reused by a process of another pod: it must never lend its namespace.
  writePid(777, `/kubepods/besteffort/pod00000000-0000-4000-8000-000000000000/${'e'.repeat(64)}`, ['10.244.9.9']);
  return { proc, cg, root };
}

describe('netns addresses', () => {
  it('parses the local IPv4 addresses of a fib_trie (loopback left out) and the global IPv6 ones of if_inet6', () => {
    expect(parseFibTrieLocal(fibTrie(['192.0.2.11', '10.244.1.7']))).toEqual(['192.0.2.11', '10.244.1.7']);
    expect(parseIfInet6(IF_INET6)).toEqual(['fd00::2']);
    expect(parseIfInet6('20010db8000000010000000000000000 04 40 00 80 eth0\n20010db8000000000001000000000001 04 40 00 80 eth0')).toEqual(['2001:db8:0:1::', '2001:db8::1:0:0:1']);
    expect(parseFibTrieLocal('garbage\n|-- 999.1\n/32 host LOCAL\n')).toEqual([]);
  });

  it('the home of a pod: the node’s addresses and the pod namespace’s, found through the pod’s cgroup', () => {
    const h = fakeHost({ podAddrs: ['10.244.1.7'] });
    const homes = new NetnsHomes({ procRoot: h.proc, cgroupRoot: h.cg });
    expect(homes.homeOf(UID, null)).toEqual({ node: ['192.0.2.11', '10.244.1.1', 'fd00::2'], pod: ['10.244.1.7'], cut: 0 });
    expect(homes.stats).toMatchObject({ podNetnsRead: 1, podNotFound: 0 });
  });

  it('attach gives a pod token read its home in a new token object (an incident’s emitted revisions share the old one); other findings pass unchanged', () => {
    const h = fakeHost({ podAddrs: ['10.244.1.7'] });
    const homes = new NetnsHomes({ procRoot: h.proc, cgroupRoot: h.cg });
    const token: FindingToken = { jti: 'j', service_account: 'app', namespace: 'default', pod: 'app-0', pod_uid: UID, node: 'worker-1', issued: null, expires: null, kind: 'bound', from: 'file' };
    const read = makeFinding({ token, container: { id: CID, runtime: 'docker', pod_uid: UID } });
    const request = makeFinding({ token: { ...token, from: 'api-request' } });
    const legacy = makeFinding({ token: { ...token, pod_uid: null, kind: 'legacy' } });
    const plain = makeFinding({});
    const [a, b, c, d] = homes.attach([read, request, legacy, plain]);
    expect(a!.token?.home).toEqual({ node: ['192.0.2.11', '10.244.1.1', 'fd00::2'], pod: ['10.244.1.7'], cut: 0 });
    expect(token.home, 'the original token object is not changed').toBeUndefined();
    expect([b, c, d]).toEqual([request, legacy, plain]);
    expect(b!.token?.home).toBeUndefined();
  });

  it('a reader pid that is no longer in the pod (reused) is not used; one that is, is', () => {
    const h = fakeHost({ podAddrs: ['10.244.1.7'] });
    const homes = new NetnsHomes({ procRoot: h.proc, cgroupRoot: h.cg });
    expect(homes.homeOf(UID, 777).pod).toEqual(['10.244.1.7']);
    fs.rmSync(path.join(h.cg, 'kubepods'), { recursive: true });
    const again = new NetnsHomes({ procRoot: h.proc, cgroupRoot: h.cg });
    expect(again.homeOf(UID, 4242).pod).toEqual(['10.244.1.7']);
    expect(new NetnsHomes({ procRoot: h.proc, cgroupRoot: h.cg }).homeOf(UID, 777).pod).toBeNull();
  });

  it('a pod with no live process gives no pod list (counted); a miss is retried after missCacheMs, a hit cached for cacheMs', () => {
    const h = fakeHost({ podAddrs: ['10.244.1.7'], podPids: [] });
    let now = 0;
    const homes = new NetnsHomes({ procRoot: h.proc, cgroupRoot: h.cg, cacheMs: 60_000, missCacheMs: 5_000, now: () => now });
    expect(homes.homeOf(UID, null).pod).toBeNull();
    expect(homes.stats.podNotFound).toBe(1);
    const podCg = path.join(h.cg, `kubepods/besteffort/pod${UID}/${CID}`);
    fs.writeFileSync(path.join(podCg, 'cgroup.procs'), '4243\n');
    fs.mkdirSync(path.join(h.proc, '4243', 'net'), { recursive: true });
    fs.writeFileSync(path.join(h.proc, '4243', 'cgroup'), `0::/kubepods/besteffort/pod${UID}/${CID}\n`);
    fs.writeFileSync(path.join(h.proc, '4243', 'net', 'fib_trie'), fibTrie(['10.244.1.8']));
    now = 1_000;
    expect(homes.homeOf(UID, null).pod).toBeNull();
    now = 6_000;
    expect(homes.homeOf(UID, null).pod).toEqual(['10.244.1.8']);
    fs.writeFileSync(path.join(h.proc, '4243', 'net', 'fib_trie'), fibTrie(['10.244.1.9']));
    now = 60_000;
    expect(homes.homeOf(UID, null).pod).toEqual(['10.244.1.8']);
    now = 66_001;
    expect(homes.homeOf(UID, null).pod).toEqual(['10.244.1.9']);
  });

  it('a pod that added thousands of addresses to its namespace gets maxAddrs of them listed, the rest counted', () => {
    const many = Array.from({ length: 2000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.1`);
    const h = fakeHost({ podAddrs: many });
    const homes = new NetnsHomes({ procRoot: h.proc, cgroupRoot: h.cg, maxAddrs: 16, maxFileBytes: 64 * 1024 });
    const home = homes.homeOf(UID, null);
    expect(home.pod).toHaveLength(16);
    expect(home.cut).toBeGreaterThan(0);
    expect(homes.stats.fileTruncated).toBeGreaterThanOrEqual(1); // 2000 leaves twice is more than 64 KiB
    expect(homes.stats.addressesCut).toBe(home.cut);
  });

  it('on the real kernel: the parsers give this namespace’s addresses as the OS lists them (loopback, link-local out)', () => {
    const v4 = parseFibTrieLocal(fs.readFileSync('/proc/self/net/fib_trie', 'latin1'));
    const v6 = parseIfInet6(fs.readFileSync('/proc/self/net/if_inet6', 'latin1'));
    const listed = Object.values(os.networkInterfaces()).flat().filter((a) => a !== undefined && !a.internal);
    const want4 = [...new Set(listed.filter((a) => a!.family === 'IPv4').map((a) => a!.address))];
    const want6 = listed.filter((a) => a!.family === 'IPv6' && !/^fe[89ab]/i.test(a!.address)).map((a) => a!.address);
    expect([...v4].sort()).toEqual(want4.sort());
    // Written as the OS (and the API server) spells them: RFC 5952.
    expect([...v6].sort()).toEqual([...new Set(want6)].sort());
  });
});
