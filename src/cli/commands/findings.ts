/**
 * `credwatch findings`: list findings from the local database (read-only, never blocks the daemon)
 * or, with --collector, from a credwatch collector for the whole fleet.
 *
 * Output format: a table unless --json (or --format json) is given, whether or not stdout is a
 * terminal. Scripts ask for JSON explicitly; a format that silently changes when output is piped
 * surprises people reading `credwatch findings | less`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { Option, type Command } from 'commander';
import { SEVERITIES, type Finding, type Severity } from '../../model/finding';
import { withReadOnlyStore } from '../../store';
import { addDbOptions, resolveDbPath, type DbOptions } from '../db-option';
import type { FindingsQuery } from '../../store/types';
import { RuntimeFailure, UsageError } from '../errors';
import { toJsonLine } from '../render/escape';
import { renderFindingsTable } from '../render/findings';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * "30m", "1h", "2d", "1w" (that long before now), "2026-11-01" (midnight UTC) or an ISO 8601 time.
 * Throws UsageError naming the flag.
 */
export function parseTimeSpec(flag: string, value: string, nowMs: number): number {
  const v = value.trim();
  const rel = /^(\d+)\s*([smhdw])$/.exec(v);
  if (rel) return nowMs - Number(rel[1]) * UNIT_MS[rel[2]!]!;
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
    const ms = Date.parse(`${v}T00:00:00Z`);
    if (Number.isFinite(ms) && new Date(ms).toISOString().startsWith(v)) return ms;
  } else if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/.test(v)) {
    // Without a zone, an ISO time would be read as local time; we show and take UTC.
    const iso = v.replace(' ', 'T');
    const ms = Date.parse(/(Z|[+-]\d{2}:?\d{2})$/i.test(iso) ? iso : `${iso}Z`);
    if (Number.isFinite(ms)) return ms;
  }
  throw new UsageError(`${flag}: cannot understand "${value}"; use a duration (30m, 1h, 2d, 1w), a date (2026-11-01, UTC) or an ISO 8601 time`);
}

export function parseLimit(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`--limit: expected a whole number (0 for no limit), got "${value}"`);
  return Number(value);
}

export type OutputFormat = 'table' | 'json';

export function resolveFormat(opts: { json?: boolean; format?: string }): OutputFormat {
  if (opts.json && opts.format === 'table') throw new UsageError('--json and --format table contradict each other');
  return opts.json || opts.format === 'json' ? 'json' : 'table';
}

interface FindingsOptions extends DbOptions {
  since?: string;
  until?: string;
  minSeverity?: Severity;
  rule?: string;
  container?: string;
  host?: string;
  limit: string;
  json?: boolean;
  format?: string;
  collector?: string;
  ca?: string;
  cert?: string;
  key?: string;
  tokenEnv?: string;
}

export function register(program: Command): void {
  addDbOptions(
    program
      .command('findings')
      .description('List findings, newest first, from the local database (or a collector with --collector)')
      .option('--since <when>', 'only findings at or after: 30m, 1h, 2d, 1w, 2026-11-01 (UTC) or an ISO time')
      .option('--until <when>', 'only findings before (same forms as --since)')
      .addOption(new Option('--min-severity <level>', 'only findings at least this severe').choices([...SEVERITIES]))
      .option('--rule <id>', 'only findings of this rule')
      .option('--container <id>', 'only findings in this container (id or id prefix)')
      .option('--host <name>', 'only findings from this host (useful with --collector)')
      .option('--limit <n>', 'at most this many findings (0 for no limit)', '100')
      .option('--json', 'one JSON object per line (same as --format json)')
      .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']))
      .option('--collector <url>', 'query a credwatch collector (https://...) instead of the local database')
      .option('--ca <file>', 'with --collector: CA bundle to trust')
      .option('--cert <file>', 'with --collector: client certificate (mTLS)')
      .option('--key <file>', 'with --collector: client key (mTLS)')
      .option('--token-env <var>', 'with --collector: environment variable holding the bearer token'),
  )
    .action(async (opts: FindingsOptions) => {
      const format = resolveFormat(opts);
      const now = Date.now();
      const q: FindingsQuery = { limit: parseLimit(opts.limit) };
      if (q.limit === 0) delete q.limit;
      if (opts.since !== undefined) q.sinceMs = parseTimeSpec('--since', opts.since, now);
      if (opts.until !== undefined) q.untilMs = parseTimeSpec('--until', opts.until, now);
      if (q.sinceMs !== undefined && q.untilMs !== undefined && q.sinceMs >= q.untilMs) {
        throw new UsageError('--since must be earlier than --until');
      }
      if (opts.minSeverity !== undefined) q.minSeverity = opts.minSeverity;
      if (opts.rule !== undefined) q.rule = opts.rule;
      if (opts.container !== undefined) q.container = opts.container.toLowerCase();
      if (opts.host !== undefined) q.host = opts.host;

      // Ask for one more than shown, to tell a table reader that the limit cut the list.
      const limit = q.limit;
      if (limit !== undefined) q.limit = limit + 1;
      if (opts.collector !== undefined) {
        await fromCollector(opts, q, limit, format);
        return;
      }
      const found = fromDb(resolveDbPath(opts), q);
      const cut = limit !== undefined && found.length > limit;
      const findings = cut ? found.slice(0, limit) : found;
      writeFindings(findings, format);
      if (cut && format === 'table') {
        process.stderr.write(`credwatch: showing the newest ${limit}; more match (use --limit N, 0 for all)\n`);
      }
    });
}

function fromDb(dbPath: string, q: FindingsQuery): Finding[] {
  return withReadOnlyStore(dbPath, (store) => store.queryFindings(q));
}

/**
 * Streams from the collector, following its cursor: JSON lines are written as they arrive (so
 * `--limit 0 --json` reads a fleet's findings in bounded memory); a table is built from what is shown.
 */
async function fromCollector(opts: FindingsOptions, q: FindingsQuery, limit: number | undefined, format: OutputFormat): Promise<void> {
  if (opts.db !== undefined) throw new UsageError('--db and --collector are exclusive: read one place');
  const tls: { ca?: string; cert?: string; key?: string; token?: string } = {};
  for (const [flag, file] of [['--ca', opts.ca], ['--cert', opts.cert], ['--key', opts.key]] as const) {
    if (file === undefined) continue;
    if (!fs.existsSync(file)) throw new UsageError(`${flag}: no such file: ${file}`);
  }
  if (opts.ca !== undefined) tls.ca = opts.ca;
  if (opts.cert !== undefined) tls.cert = opts.cert;
  if (opts.key !== undefined) tls.key = opts.key;
  if ((opts.cert === undefined) !== (opts.key === undefined)) throw new UsageError('--cert and --key go together');
  if (opts.tokenEnv !== undefined) {
    const token = process.env[opts.tokenEnv];
    if (token === undefined || token === '') throw new UsageError(`--token-env: environment variable ${opts.tokenEnv} is not set`);
    tls.token = token;
  }
  // Loaded only here: the local query path should not pay for the HTTPS client.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { streamCollector } = require('../../collector/client') as typeof import('../../collector/client');
  const table: Finding[] = [];
  let shown = 0;
  let cut = false;
  let result;
  try {
    // Newest first, as the local query lists them.
    result = await streamCollector(opts.collector!, q, tls, async (f) => {
      if (limit !== undefined && shown >= limit) {
        cut = true;
        return;
      }
      shown++;
      if (format === 'json') {
        if (!process.stdout.write(toJsonLine(f) + '\n')) await new Promise((resolve) => process.stdout.once('drain', resolve));
      } else table.push(f);
    });
  } catch (err) {
    throw new RuntimeFailure(`querying the collector ${opts.collector} failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (format === 'table') writeFindings(table, format);
  if (result.invalid > 0) process.stderr.write(`credwatch: the collector sent ${result.invalid} line(s) that are not valid findings; they were skipped\n`);
  if (cut && format === 'table') process.stderr.write(`credwatch: showing the newest ${limit}; more match (use --limit N, 0 for all)\n`);
}

function writeFindings(findings: Finding[], format: OutputFormat): void {
  if (format === 'json') {
    let out = '';
    for (const f of findings) out += toJsonLine(f) + '\n';
    process.stdout.write(out);
    return;
  }
  if (findings.length === 0) {
    process.stdout.write('No findings.\n');
    return;
  }
  const width = process.stdout.isTTY ? process.stdout.columns : undefined;
  process.stdout.write(renderFindingsTable(findings, { localHost: os.hostname(), ...(width ? { width } : {}) }));
}
