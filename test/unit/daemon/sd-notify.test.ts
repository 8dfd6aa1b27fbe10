import { afterEach, describe, expect, it, vi } from 'vitest';
import { createSdNotifier, watchdogIntervalFromEnv } from '../../../src/daemon/sd-notify';

afterEach(() => vi.useRealTimers());

describe('sd_notify', () => {
  it('is a no-op without NOTIFY_SOCKET', () => {
    const sent: string[] = [];
    const n = createSdNotifier({ env: { WATCHDOG_USEC: '30000000' }, send: (s) => sent.push(s) });
    n.ready('ok');
    n.status('x');
    n.startWatchdog();
    n.stopping();
    n.close();
    expect(n.enabled).toBe(false);
    expect(n.watchdogIntervalMs).toBeNull();
    expect(sent).toEqual([]);
  });

  it('sends READY, STATUS (one line) and STOPPING to NOTIFY_SOCKET', () => {
    const sent: [string, string][] = [];
    const n = createSdNotifier({ env: { NOTIFY_SOCKET: '/run/systemd/notify' }, send: (s, p) => sent.push([s, p]) });
    n.ready('reading unicast');
    n.status('events 10\nfindings 1');
    n.stopping('removing rules');
    expect(sent).toEqual([
      ['READY=1\nSTATUS=reading unicast', '/run/systemd/notify'],
      ['STATUS=events 10 findings 1', '/run/systemd/notify'],
      ['STOPPING=1\nSTATUS=removing rules', '/run/systemd/notify'],
    ]);
  });

  it('pings the watchdog at half of WATCHDOG_USEC, only while healthy', () => {
    vi.useFakeTimers();
    const sent: string[] = [];
    let healthy = true;
    const n = createSdNotifier({ env: { NOTIFY_SOCKET: '@sd', WATCHDOG_USEC: '30000000' }, pid: 10, send: (s) => sent.push(s), healthy: () => healthy });
    expect(n.watchdogIntervalMs).toBe(15000);
    n.startWatchdog();
    vi.advanceTimersByTime(30_000);
    expect(sent).toEqual(['WATCHDOG=1', 'WATCHDOG=1']);
    healthy = false;
    vi.advanceTimersByTime(30_000);
    expect(sent).toHaveLength(2);
    n.close();
  });

  it('ignores a watchdog meant for another pid', () => {
    expect(watchdogIntervalFromEnv({ WATCHDOG_USEC: '1000000', WATCHDOG_PID: '5' }, 6)).toBeNull();
    expect(watchdogIntervalFromEnv({ WATCHDOG_USEC: '1000000', WATCHDOG_PID: '6' }, 6)).toBe(500);
    expect(watchdogIntervalFromEnv({ WATCHDOG_USEC: 'x' }, 6)).toBeNull();
  });

  it('a failing send never throws', () => {
    const n = createSdNotifier({
      env: { NOTIFY_SOCKET: '/nonexistent' },
      send: () => {
        throw new Error('ENOENT');
      },
    });
    expect(() => n.ready()).not.toThrow();
  });
});
