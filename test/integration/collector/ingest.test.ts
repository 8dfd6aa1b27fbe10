/** The collector's body decoding, NDJSON validation and rate limiter, without a server. */
import { deflateSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../../src/collector/auth';
import { IngestError, decodeBody, parseNdjsonFindings } from '../../../src/collector/ingest';
import { makeFinding } from '../../unit/ship/support';

const line = (o: object) => JSON.stringify(o);

describe('decodeBody', () => {
  it('passes identity through and inflates gzip and deflate', async () => {
    const raw = Buffer.from('hello');
    expect((await decodeBody(raw, undefined, 100)).toString()).toBe('hello');
    expect((await decodeBody(gzipSync(raw), 'gzip', 100)).toString()).toBe('hello');
    expect((await decodeBody(deflateSync(raw), 'deflate', 100)).toString()).toBe('hello');
  });
  it('refuses unknown encodings (415), corrupt gzip (400) and output over the limit (413)', async () => {
    await expect(decodeBody(Buffer.from('x'), 'br', 100)).rejects.toMatchObject({ status: 415 });
    await expect(decodeBody(Buffer.from('not gzip'), 'gzip', 100)).rejects.toMatchObject({ status: 400 });
    await expect(decodeBody(gzipSync(Buffer.alloc(1000)), 'gzip', 100)).rejects.toMatchObject({ status: 413 });
  });
});

describe('parseNdjsonFindings', () => {
  it('accepts LF and CRLF lines and skips blank ones', () => {
    const a = makeFinding();
    const b = makeFinding();
    expect(parseNdjsonFindings(Buffer.from(`${line(a)}\r\n\r\n${line(b)}`)).map((e) => e.finding.id)).toEqual([a.id, b.id]);
  });
  it('names the line of the first problem', () => {
    const ok = line(makeFinding());
    const cases: [string, RegExp][] = [
      [`${ok}\n[1,2]\n`, /^line 2: not a JSON object/],
      [`${ok}\n${ok}\n${line({ ...makeFinding(), id: '' })}`, /^line 3: field "id"/],
      [line({ ...makeFinding(), time: 'yesterday' }), /^line 1: field "time"/],
      [line({ ...makeFinding(), source: 'syslog' }), /^line 1: field "source"/],
      ['\n\n', /no findings/],
    ];
    for (const [body, re] of cases) {
      let err: unknown;
      try {
        parseNdjsonFindings(Buffer.from(body));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(IngestError);
      expect((err as IngestError).status).toBe(400);
      expect((err as IngestError).message).toMatch(re);
    }
  });
});

describe('RateLimiter', () => {
  it('allows a burst, then refills at the configured rate, per key', () => {
    let t = 0;
    const rl = new RateLimiter(2, 3, () => t);
    expect([rl.take('a'), rl.take('a'), rl.take('a')]).toEqual([0, 0, 0]);
    expect(rl.take('a')).toBe(500);
    expect(rl.take('b')).toBe(0);
    t += 500;
    expect(rl.take('a')).toBe(0);
    expect(rl.take('a')).toBeGreaterThan(0);
  });
});
