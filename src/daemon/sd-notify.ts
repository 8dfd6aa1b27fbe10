/**
 * systemd notifications for a `Type=notify` unit: READY=1 once the agent reads events, STATUS=... for
 * `systemctl status`, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on the way out.
 *
 * Node has no unix datagram sockets, so the datagram goes through the addon's sdNotify. Without
 * NOTIFY_SOCKET (not started by systemd) every call is a no-op. The watchdog ping is only sent while
 * `healthy()` says the pipeline is alive, so a wedged reader gets the service restarted instead of
 * being kept alive by a timer that still fires.
 */
import { sdNotify } from '../native/binding';
import type { Logger } from './logger';

export type NotifySend = (state: string, socketPath: string) => void;

export interface SdNotifierOptions {
  env?: Record<string, string | undefined>;
  /** Sends one datagram; default: the addon's sdNotify. */
  send?: NotifySend;
  pid?: number;
  logger?: Logger;
  /** Checked before each watchdog ping. Default: always healthy. */
  healthy?: () => boolean;
}

export interface SdNotifier {
  /** True when NOTIFY_SOCKET is set: messages go somewhere. */
  readonly enabled: boolean;
  /** The watchdog ping interval in ms (half of WATCHDOG_USEC), or null when no watchdog is asked for. */
  readonly watchdogIntervalMs: number | null;
  ready(status?: string): void;
  status(text: string): void;
  /** Starts the periodic WATCHDOG=1 pings (no-op without a watchdog). */
  startWatchdog(): void;
  stopping(status?: string): void;
  /** Stops the watchdog timer. */
  close(): void;
}

function defaultSend(): NotifySend {
  // binding.ts loads the .node file on first use only, so importing it costs nothing without a socket.
  return (state, socketPath) => {
    sdNotify(state, socketPath);
  };
}

/** STATUS= takes one line; newlines would start new assignments. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').slice(0, 1024);
}

export function watchdogIntervalFromEnv(env: Record<string, string | undefined>, pid: number): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isFinite(usec) || usec <= 0) return null;
  // WATCHDOG_PID names the process the watchdog is meant for; a child that inherited it must not ping.
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return null;
  return Math.max(1, Math.floor(usec / 2 / 1000));
}

export function createSdNotifier(opts: SdNotifierOptions = {}): SdNotifier {
  const env = opts.env ?? process.env;
  const socketPath = env.NOTIFY_SOCKET ?? '';
  const enabled = socketPath !== '';
  const pid = opts.pid ?? process.pid;
  const watchdogIntervalMs = enabled ? watchdogIntervalFromEnv(env, pid) : null;
  let send: NotifySend | null = opts.send ?? null;
  let timer: NodeJS.Timeout | null = null;
  let failures = 0;

  const notify = (state: string): void => {
    if (!enabled) return;
    try {
      send ??= defaultSend();
      send(state, socketPath);
    } catch (err) {
      // A notification that cannot be sent must not take the agent down; systemd will notice the
      // missing READY or WATCHDOG by itself. Log the first few, then stay quiet.
      if (failures++ < 3) opts.logger?.warn({ error: String(err), state: state.split('\n')[0] }, 'sd_notify failed');
    }
  };

  return {
    enabled,
    watchdogIntervalMs,
    ready(status) {
      notify(status ? `READY=1\nSTATUS=${oneLine(status)}` : 'READY=1');
    },
    status(text) {
      notify(`STATUS=${oneLine(text)}`);
    },
    startWatchdog() {
      if (watchdogIntervalMs === null || timer) return;
      const healthy = opts.healthy ?? (() => true);
      timer = setInterval(() => {
        if (healthy()) notify('WATCHDOG=1');
        else opts.logger?.warn('pipeline unhealthy: withholding the systemd watchdog ping');
      }, watchdogIntervalMs);
      timer.unref();
    },
    stopping(status) {
      notify(status ? `STOPPING=1\nSTATUS=${oneLine(status)}` : 'STOPPING=1');
    },
    close() {
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
