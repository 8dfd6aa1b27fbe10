/**
 * Bad input never escapes as an exception: property-based fuzzing (fast-check) of everything that
 * reads attacker-influenced bytes — the audit record parser, the reassembler and event builder
 * (EXECVE argv rebuild, SOCKADDR, PROCTITLE, hex), the detector behind them, and the Kubernetes
 * audit line source — with mutated real records from test/fixtures and with random bytes.
 * Errors must be counted (parse failures, decode problems, bad lines), and memory must stay bounded
 * (the reassembler's in-flight set never exceeds its cap).
 */
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/event';
import { decodeHex, decodeSurrogateEscaped, encodeSurrogateEscaped, hexToString } from '../../src/audit/bytes';
import { ArgvBuilder } from '../../src/audit/execve';
import { FieldCursor, parseRecord } from '../../src/audit/record';
import { Reassembler } from '../../src/audit/reassembler';
import { decodeSockaddr } from '../../src/audit/sockaddr';
import { createHostStages } from '../../src/pipeline/host-stages';
import { parseKubeAuditLine, salvageKubeAuditLine } from '../../src/kube/event';
import { readKubeAuditStream } from '../../src/sources/kube-audit';
import { logLineHeader } from '../../src/sources/auditlog';
import { auditLines, kubeLines, mutatedLineArb, randomBytesLineArb } from './corpus';

const RUNS = Number(process.env.CREDWATCH_FUZZ_RUNS ?? 300);

const auditPool = auditLines();
const kubePool = kubeLines();
const anyAuditLine = fc.oneof({ weight: 8, arbitrary: mutatedLineArb(auditPool) }, { weight: 1, arbitrary: randomBytesLineArb });
const anyKubeLine = fc.oneof({ weight: 8, arbitrary: mutatedLineArb(kubePool) }, { weight: 1, arbitrary: randomBytesLineArb });

function recordOf(line: string): { type: number; text: string; node: string | null } {
  const h = logLineHeader(line);
  return { type: h.type, text: line, node: h.node };
}

describe('fuzz: audit record parser', () => {
  it('has a real corpus to mutate', () => {
    expect(auditPool.length).toBeGreaterThan(200);
    expect(kubePool.length).toBeGreaterThan(50);
  });

  it('parseRecord returns a result or a failure with a reason for any mutated or random line', () => {
    fc.assert(
      fc.property(anyAuditLine, fc.integer({ min: 0, max: 3000 }), (line, type) => {
        const r = parseRecord({ type, text: line });
        if (r.failed) expect(typeof r.reason).toBe('string');
        else {
          expect(r.bodyStart).toBeGreaterThanOrEqual(0);
          expect(r.bodyEnd).toBeLessThanOrEqual(line.length);
          // Walking every field of what parsed must not throw either.
          const cur = new FieldCursor().reset(r.text, r.bodyStart, r.bodyEnd);
          let n = 0;
          while (cur.next() && n++ < 100_000) cur.raw();
        }
      }),
      { numRuns: RUNS * 3 },
    );
  });
});

describe('fuzz: hex, SOCKADDR and argv decoding', () => {
  it('decodeHex/hexToString accept any text and round-trip real bytes', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), (s, bytes) => {
        decodeHex(s);
        hexToString(s);
        const hex = Buffer.from(bytes).toString('hex');
        expect(Buffer.from(decodeHex(hex) ?? [])).toEqual(Buffer.from(bytes));
        const str = hexToString(hex.toUpperCase());
        expect(str).not.toBeNull();
        expect(Buffer.from(encodeSurrogateEscaped(str as string))).toEqual(Buffer.from(bytes));
        expect(encodeSurrogateEscaped(decodeSurrogateEscaped(bytes))).toEqual(Buffer.from(bytes));
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('decodeSockaddr never throws: any hex of any length, any family, flags what it cannot read', () => {
    const familyHex = fc.constantFrom('0100', '0200', '0A00', '1000', '1100', 'FFFF', '');
    fc.assert(
      fc.property(familyHex, fc.uint8Array({ maxLength: 140 }), fc.boolean(), fc.string({ maxLength: 40 }), (fam, body, cut, junk) => {
        let hex = fam + Buffer.from(body).toString('hex').toUpperCase();
        if (cut && hex.length > 0) hex = hex.slice(0, hex.length - 1);
        const r = decodeSockaddr(hex);
        expect(r.sockaddr).toBeDefined();
        const j = decodeSockaddr(junk);
        if (!/^([0-9a-fA-F]{2}){2,}$/.test(junk)) expect(j.malformed).toBe(true);
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('EXECVE argv rebuild: arbitrary argc/aN/aN_len/aN[k] fields give an argv and counted problems, never a throw', () => {
    const field = fc.oneof(
      fc.nat({ max: 20 }).map((n) => `argc=${n}`),
      fc.tuple(fc.nat({ max: 30 }), fc.string({ maxLength: 20 })).map(([i, v]) => `a${i}="${v.replace(/["\s]/g, '')}"`),
      fc.tuple(fc.nat({ max: 30 }), fc.uint8Array({ maxLength: 30 })).map(([i, b]) => `a${i}=${Buffer.from(b).toString('hex').toUpperCase()}`),
      fc.tuple(fc.nat({ max: 30 }), fc.integer({ min: -5, max: 1_000_000_000 })).map(([i, n]) => `a${i}_len=${n}`),
      fc.tuple(fc.nat({ max: 30 }), fc.nat({ max: 4000 }), fc.string({ maxLength: 10 })).map(([i, k, v]) => `a${i}[${k}]=${v.replace(/\s/g, '')}`),
      fc.string({ maxLength: 15 }),
    );
    fc.assert(
      fc.property(fc.array(fc.array(field, { maxLength: 12 }), { minLength: 1, maxLength: 4 }), (records) => {
        const b = new ArgvBuilder();
        const cur = new FieldCursor();
        for (const fields of records) {
          const body = fields.join(' ');
          b.addRecord(cur.reset(body, 0, body.length));
        }
        const r = b.build();
        expect(Array.isArray(r.argv)).toBe(true);
        // A declared length of a billion must not allocate a billion: argv stays small.
        expect(r.argv.length).toBeLessThanOrEqual(4001);
        for (const a of r.argv) expect(typeof a).toBe('string');
      }),
      { numRuns: RUNS * 3 },
    );
  });
});

describe('fuzz: reassembler + detector', () => {
  it('streams of mutated records: no throw, every record accounted, in-flight bounded, parse errors counted', () => {
    fc.assert(
      fc.property(fc.array(anyAuditLine, { minLength: 1, maxLength: 200 }), fc.integer({ min: 1, max: 64 }), (lines, maxInFlight) => {
        let clock = 1_000_000;
        const events: AuditEvent[] = [];
        const detector = createHostStages({ host: 'fuzz', users: null, now: () => clock });
        const r = new Reassembler({ maxInFlight, maxAgeMs: 2000, now: () => clock, onEvent: (ev) => events.push(ev) });
        let parseFailures = 0;
        for (const l of lines) {
          const rec = recordOf(l);
          if (parseRecord(rec, rec.node).failed) parseFailures++;
          r.push(rec, rec.node);
          clock += 7;
          expect(inFlight(r)).toBeLessThanOrEqual(maxInFlight);
        }
        r.flush();
        for (const ev of events) detector.onAuditEvent(ev);
        detector.tick(clock);
        expect(r.stats.records).toBe(lines.length);
        expect(r.stats.parseErrors).toBe(parseFailures);
        // Every parsed record ends up in exactly one event: none silently dropped.
        const recordsInEvents = events.reduce((n, ev) => n + ev.records.length, 0);
        expect(recordsInEvents).toBe(lines.length - parseFailures);
        // Events are JSON-serialisable (the --events output and the store depend on it).
        for (const ev of events) JSON.parse(JSON.stringify(ev));
      }),
      { numRuns: RUNS },
    );
  }, 30_000 + RUNS * 40);
});

describe('reassembler memory with hostile node names', () => {
  it('tracks at most 4096 nodes however many distinct node= names arrive', () => {
    const r = new Reassembler({ maxAgeMs: 2000, onEvent: () => undefined });
    for (let i = 0; i < 10_000; i++) {
      r.push({ type: 1300, text: `node=n${i} type=SYSCALL msg=audit(1700000000.000:${i}): syscall=59` }, `n${i}`);
      r.push({ type: 1320, text: `node=n${i} type=EOE msg=audit(1700000000.000:${i}): ` }, `n${i}`);
    }
    expect((r as unknown as { nodes: Map<string, unknown> }).nodes.size).toBeLessThanOrEqual(4096);
    expect(r.stats.events).toBe(10_000);
  });
});

function inFlight(r: Reassembler): number {
  return (r as unknown as { inFlightCount: number }).inFlightCount;
}

describe('fuzz: Kubernetes audit source', () => {
  it('parseKubeAuditLine and salvageKubeAuditLine return ok or an error for any mutated or random line', () => {
    fc.assert(
      fc.property(anyKubeLine, (line) => {
        const r = parseKubeAuditLine(line);
        if (!r.ok) expect(typeof r.error).toBe('string');
        else for (const ev of r.events) expect(typeof ev.auditID).toBe('string');
        const s = salvageKubeAuditLine(line.slice(0, 2000), line.slice(-500));
        expect(typeof s.ok).toBe('boolean');
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('the line source counts every line as an event, bad, empty or oversize and keeps going', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(anyKubeLine, { minLength: 1, maxLength: 40 }), fc.nat({ max: 7 }), async (lines, chunkSeed) => {
        const body = Buffer.from(lines.map((l) => l.replace(/\n/g, ' ')).join('\n') + '\n', 'latin1');
        // Chunk boundaries anywhere, as a file read would cut them.
        const chunks: Buffer[] = [];
        const step = 1 + ((chunkSeed * 997) % 4096);
        for (let i = 0; i < body.length; i += step) chunks.push(body.subarray(i, i + step));
        const res = await readKubeAuditStream(Readable.from(chunks), 'fuzz', { maxLineBytes: 64 * 1024 });
        const s = res.stats;
        expect(s.lines).toBe(lines.length);
        expect(s.events + s.badLines).toBeGreaterThanOrEqual(s.lines - s.emptyLines - s.salvagedLines);
        expect(s.handlerErrors).toBe(0);
      }),
      { numRuns: Math.max(20, RUNS / 5) },
    );
  }, 30_000 + RUNS * 40);
});
