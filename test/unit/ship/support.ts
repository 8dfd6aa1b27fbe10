/**
 * Shared by the ship and collector tests: a finding factory, an in-memory OutboxReader with the same
 * cursor semantics as the SQLite outbox, a pino logger that keeps its lines, and an HTTPS stub receiver
 * that records every request (body already gunzipped) and answers through a handler.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import pino, { type Logger } from 'pino';
import type { Finding, Severity } from '../../../src/model/finding';
import type { OutboxReader } from '../../../src/store/types';

let counter = 0;

export function makeFinding(over: Partial<Finding> = {}): Finding {
  counter++;
  const n = over.id ?? `f${String(counter).padStart(6, '0')}`;
  return {
    id: n,
    rule: 'cw-token-read-then-api',
    title: 'Service account token read then API server contacted',
    description: 'A process read a service account token and connected to the Kubernetes API server.',
    severity: 'high',
    score: 72,
    confidence: 'high',
    covers: ['H1'],
    mitre: ['T1552.007'],
    time: new Date(Date.UTC(2026, 10, 22, 12, 0, 0, 123) + counter).toISOString(),
    host: 'node-a',
    source: 'audit',
    indicators: ['token-read', 'apiserver-connect'],
    process: {
      pid: 4242,
      ppid: 4200,
      exe: '/usr/bin/curl',
      comm: 'curl',
      argv: ['curl', '-k', 'https://10.96.0.1/api/v1/secrets', '-H', 'Authorization: Bearer [REDACTED]'],
      cwd: '/tmp',
      uid: 0,
      user: 'root',
      auid: 4294967295,
      tty: 'pts0',
      interactive: true,
      parents: [{ pid: 4200, exe: '/bin/sh', argv: ['sh'] }],
    },
    container: { id: 'a'.repeat(64), runtime: 'docker', pod_uid: null },
    kube: null,
    evidence: [{ event_id: '1700000000.123:42', time: '2026-11-22T12:00:00.123Z', role: 'token-read', records: [{ type: 'SYSCALL', text: 'arch=c000003e syscall=257 success=yes' }] }],
    ...over,
  };
}

export function makeFindings(n: number, severity: Severity = 'high'): Finding[] {
  return Array.from({ length: n }, () => makeFinding({ severity }));
}

/** OutboxReader over an array: seq = index + 1; cursors per output; nothing is removed on ack. */
export class MemoryOutbox implements OutboxReader {
  readonly rows: { seq: number; finding: Finding }[] = [];
  readonly cursors = new Map<string, number>();
  readonly acks: { output: string; seq: number }[] = [];

  add(findings: Finding[]): void {
    for (const f of findings) this.rows.push({ seq: this.rows.length + 1, finding: f });
  }
  pending(output: string, limit: number): { seq: number; finding: Finding }[] {
    const c = this.cursors.get(output) ?? 0;
    return this.rows.filter((r) => r.seq > c).slice(0, limit);
  }
  ack(output: string, seq: number): void {
    this.acks.push({ output, seq });
    this.cursors.set(output, Math.max(seq, this.cursors.get(output) ?? 0));
  }
  depth(output: string): number {
    const c = this.cursors.get(output) ?? 0;
    return this.rows.filter((r) => r.seq > c).length;
  }
}

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { logger, lines };
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  raw: Buffer;
  /** Gunzipped when Content-Encoding is gzip. */
  body: string;
}

export type StubHandler = (req: RecordedRequest, res: ServerResponse) => void | Promise<void>;

export interface Stub {
  url: string;
  port: number;
  requests: RecordedRequest[];
  setHandler(h: StubHandler): void;
  close(): Promise<void>;
}

export async function startStub(tls: { cert: string; key: string }, handler: StubHandler, port = 0): Promise<Stub> {
  let current = handler;
  const requests: RecordedRequest[] = [];
  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
      const rec: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, raw, body };
      requests.push(rec);
      Promise.resolve(current(rec, res)).catch(() => res.destroy());
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const p = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${p}`,
    port: p,
    requests,
    setHandler: (h) => (current = h),
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

export async function waitFor(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
