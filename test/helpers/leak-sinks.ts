/**
 * Every place a finding's text can end up, for one replayed input: `credwatch replay` (table, --json,
 * --events --records) stdout and stderr, the SQLite file's bytes after storing the findings, the
 * `findings`/`show` renderings read back from that store, every ship format's body, and the agent's
 * per-finding log line. `leakedIn` says which of them still hold a secret in any form it could be
 * read back from (plain, hex either case, URL-encoded, JSON-escaped).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { renderFindingDetail, renderFindingsTable } from '../../src/cli/render/findings';
import { logFinding } from '../../src/daemon/finding-log';
import { createLogger } from '../../src/daemon/logger';
import type { Finding } from '../../src/model/finding';
import { elasticBulkFormat } from '../../src/ship/formats/elastic-bulk';
import { ndjsonFormat } from '../../src/ship/formats/ndjson';
import { splunkHecFormat } from '../../src/ship/formats/splunk-hec';
import { openStore } from '../../src/store';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin', 'credwatch');

export function builtCli(): boolean {
  return fs.existsSync(path.join(ROOT, 'dist/src/cli/main.js'));
}

function run(args: string[]): string {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', maxBuffer: 256 << 20, timeout: 60_000, env: { ...process.env, CREDWATCH_DB: '' } });
  if (r.status !== 0) throw new Error(`credwatch ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return `${r.stdout}\n${r.stderr}`;
}

export interface Sinks {
  findings: Finding[];
  /** sink name → text (db bytes as latin1, so hex and plain both stay searchable). */
  texts: Map<string, string>;
}

/** Replays `file` (auditd text or Kubernetes audit JSON lines) through every sink. */
export function collectSinks(file: string, opts: { auditText: boolean }): Sinks {
  const texts = new Map<string, string>();
  const json = run(['replay', '--json', file]);
  texts.set('replay --json', json);
  texts.set('replay table', run(['replay', file]));
  if (opts.auditText) texts.set('replay --events --records', run(['replay', '--events', '--records', file]));
  const findings = json
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Finding);

  findingSinks(findings, texts);
  return { findings, texts };
}

/**
 * The sinks after replay for findings made in-process (the agent's own paths, e.g. the token trail):
 * the SQLite file, the CLI renderings read back from it, every ship format and the agent's log line.
 */
export function findingSinks(findings: Finding[], texts = new Map<string, string>()): Map<string, string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-leak-'));
  try {
    const db = path.join(dir, 'findings.db');
    const store = openStore(db);
    store.insertFindings(findings);
    const back = findings.map((f) => store.getFinding(f.id)).filter((f): f is Finding => f !== null);
    store.close();
    let bytes = '';
    for (const f of fs.readdirSync(dir)) bytes += fs.readFileSync(path.join(dir, f)).toString('latin1');
    texts.set('db file', bytes);
    texts.set('findings (table)', renderFindingsTable(back, { localHost: os.hostname() }));
    texts.set('show', back.map((f) => renderFindingDetail(f)).join('\n'));
    texts.set('findings --db --json', run(['findings', '--db', db, '--json', '--limit', '0']));
    const ctx = { agentId: 'a', host: 'h', sourcetype: 'credwatch:finding' };
    for (const [name, fmt] of [['ndjson', ndjsonFormat], ['splunk-hec', splunkHecFormat], ['elastic-bulk', elasticBulkFormat]] as const) {
      texts.set(`ship ${name}`, fmt.encode(back, ctx).body);
    }
    let logged = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logged += chunk.toString('utf8');
        cb();
      },
    });
    const logger = createLogger('info', sink);
    for (const f of back) logFinding(logger, f);
    texts.set('log', logged);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return texts;
}

/** The readable forms a secret could survive in. */
function forms(secret: string): string[] {
  const hex = Buffer.from(secret, 'utf8').toString('hex');
  return [secret, hex, hex.toUpperCase(), encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)];
}

export function leakedIn(sinks: Sinks, secret: string): string[] {
  const fs_ = forms(secret);
  const out: string[] = [];
  for (const [name, text] of sinks.texts) if (fs_.some((f) => text.includes(f))) out.push(name);
  return out;
}
