/**
 * sd_notify through the real addon to a real unix datagram socket (a python3 receiver standing in for
 * systemd), both a path socket and an abstract one. Needs no root and no audit lock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createSdNotifier } from '../../../src/daemon/sd-notify';

const RECEIVER = `
import socket, sys, json
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(('\\0' + addr[1:]) if addr.startswith('@') else addr)
s.settimeout(5)
print('ready', flush=True)
try:
    while True:
        data = s.recv(4096)
        print(json.dumps(data.decode()), flush=True)
except socket.timeout:
    pass
`;

function hasPython(): boolean {
  return spawnSync('python3', ['-c', 'pass']).status === 0;
}

const python = hasPython();
if (!python) console.log('skipping sd_notify integration: python3 is not installed');

let child: ChildProcess | null = null;
afterEach(() => {
  if (child?.pid) child.kill();
  child = null;
});

async function receive(addr: string, act: () => Promise<void>, expected: number): Promise<string[]> {
  const c = spawn('python3', ['-c', RECEIVER, addr], { stdio: ['ignore', 'pipe', 'inherit'] });
  child = c;
  const lines: string[] = [];
  let buf = '';
  let onLine: (() => void) | null = null;
  c.stdout.setEncoding('utf8');
  c.stdout.on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      onLine?.();
    }
  });
  const waitFor = (n: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out; got ${JSON.stringify(lines)}`)), 5000);
      onLine = () => {
        if (lines.length >= n) {
          clearTimeout(t);
          resolve();
        }
      };
      onLine();
    });
  await waitFor(1);
  expect(lines[0]).toBe('ready');
  await act();
  await waitFor(1 + expected);
  return lines.slice(1).map((l) => JSON.parse(l) as string);
}

describe.skipIf(!python)('sd_notify through the addon', () => {
  it('delivers READY, STATUS, WATCHDOG and STOPPING to a path socket', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-notify-'));
    const sock = path.join(dir, 'notify');
    try {
      const got = await receive(
        sock,
        async () => {
          const n = createSdNotifier({ env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '200000' } });
          expect(n.watchdogIntervalMs).toBe(100);
          n.ready('reading unicast');
          n.status('events 5');
          n.startWatchdog();
          await new Promise((r) => setTimeout(r, 250));
          n.close();
          n.stopping();
        },
        5,
      );
      expect(got.slice(0, 2)).toEqual(['READY=1\nSTATUS=reading unicast', 'STATUS=events 5']);
      expect(got.filter((m) => m === 'WATCHDOG=1').length).toBeGreaterThanOrEqual(2);
      expect(got[got.length - 1]).toBe('STOPPING=1');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('delivers to an abstract socket (@name)', async () => {
    const name = `@credwatch-test-${process.pid}`;
    const got = await receive(
      name,
      async () => {
        createSdNotifier({ env: { NOTIFY_SOCKET: name } }).ready();
      },
      1,
    );
    expect(got).toEqual(['READY=1']);
  });
});
