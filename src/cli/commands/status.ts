/**
 * `credwatch status`: how the daemon is doing, from the snapshot it publishes into the database every
 * ~2 s, plus what the database itself says (findings today, outbox depth). Works whether the daemon
 * runs or not; exits 1 only when the database cannot be read.
 */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { RuntimeFailure } from '../errors';
import { readStatusSnapshot } from '../../daemon/status-snapshot';
import { withReadOnlyStore } from '../../store';
import { addDbOptions, resolveDbPath, type DbOptions } from '../db-option';
import { toJsonLine } from '../render/escape';
import { renderStatus, type StatusReport } from '../render/status';
import { formatDuration } from '../render/time';
import { resolveFormat } from './findings';

/** A snapshot older than this means the daemon is gone or hung (it publishes every ~2 s). */
export const STALE_SNAPSHOT_MS = 10_000;

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function register(program: Command): void {
  addDbOptions(
    program
      .command('status')
      .description('Show whether the daemon runs and how it is doing (kernel audit, rates, drops, outbox)')
      .option('--json', 'the status as one JSON object'),
  )
    .action((opts: { json?: boolean } & DbOptions) => {
      const format = resolveFormat(opts);
      const now = Date.now();
      const dbPath = resolveDbPath(opts);
      if (!fs.existsSync(dbPath)) {
        // Not an unreadable database: the agent never ran with this one. Said as status, then exit 1.
        const reason = `the agent has not run here yet: no findings database at ${dbPath}; the daemon (credwatch run) creates it when it starts; use --db FILE to read another one`;
        if (format === 'json') process.stdout.write(toJsonLine({ db: dbPath, running: false, reason }) + '\n');
        throw new RuntimeFailure(reason);
      }
      const report = withReadOnlyStore(dbPath, (store): StatusReport => {
        const snapshot = readStatusSnapshot(store.state);
        const ageMs = snapshot ? Math.max(0, now - snapshot.updatedMs) : null;
        let running = false;
        let reason: string | undefined;
        if (!snapshot) reason = 'no status snapshot in this database: the daemon has not run with it';
        else if (!pidAlive(snapshot.pid)) reason = `pid ${snapshot.pid} is gone; last snapshot ${formatDuration(ageMs!)} ago`;
        else if (ageMs! > STALE_SNAPSHOT_MS) reason = `pid ${snapshot.pid} exists but its last snapshot is ${formatDuration(ageMs!)} old (hung, or another process reused the pid)`;
        else running = true;

        const dayStart = Math.floor(now / 86_400_000) * 86_400_000;
        const outbox: Record<string, number> = {};
        const lastShip: Record<string, number | null> = {};
        for (const [name, ms] of Object.entries(snapshot?.lastShip ?? {})) lastShip[name] = ms;
        for (const name of Object.keys(snapshot?.outbox ?? {})) outbox[name] = store.outbox.depth(name);
        for (const o of store.outbox.outputs()) {
          outbox[o.output] = store.outbox.depth(o.output);
          // The cursor moves only on a successful delivery: its time is the last successful ship.
          lastShip[o.output] = Math.max(lastShip[o.output] ?? 0, o.updatedMs);
        }
        return {
          db: store.path,
          running,
          ...(reason !== undefined ? { notRunningReason: reason } : {}),
          snapshotAgeMs: ageMs,
          uptimeMs: snapshot && running ? now - snapshot.startedMs : null,
          findingsToday: store.countFindingsSince(dayStart),
          outbox,
          lastShip,
          snapshot,
        };
      });
      process.stdout.write(format === 'json' ? toJsonLine(report) + '\n' : renderStatus(report, now));
    });
}
