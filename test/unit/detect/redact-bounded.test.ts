/**
 * Redaction with bounded work (src/detect/bound.ts redactBoundedArgv, redact/text.ts redactCutText):
 * only what a finding keeps is redacted, through windows. A secret form placed so that the window or
 * the kept cut falls anywhere inside it must still be gone: replaced whole, or from its start.
 * Also: PROCTITLE, which the kernel cuts at 128 bytes, re-rendered from the argv or redacted as cut text.
 */
import { describe, expect, it } from 'vitest';
import { ARGV_WINDOW_BUDGET, MAX_ARG_CHARS, MAX_ARGS, MIN_ARG_WINDOW, WINDOW_MARGIN, redactBoundedArgv } from '../../../src/detect/bound';
import { redactRecords } from '../../../src/detect/redact';
import { redactCutText, redactText } from '../../../src/detect/redact/text';
import { hostCases } from '../../helpers/secret-forms';

const SECRET = 'Qz9Wk3mR7tXb2Lp5Nv8Hc4Jd6Fg1Sa0Ye';
/** What must never be seen: the secret's first characters (a cut keeps a prefix). */
const PREFIX = SECRET.slice(0, 4);

// Each builds one argument holding SECRET (or a shape made from it); `leak` is what must not survive.
const FORMS: { name: string; arg: string; leak: string }[] = [
  { name: 'URL userinfo', arg: `https://admin:${SECRET}@registry.local/v2/`, leak: PREFIX },
  { name: 'docker auth JSON', arg: `{"auths":{"registry.local":{"auth":"${SECRET}"}}}`, leak: PREFIX },
  { name: 'docker auth JSON escaped in JSON', arg: `{"cmd":"echo '{\\"auths\\":{\\"r\\":{\\"auth\\":\\"${SECRET}\\"}}}'"}`, leak: PREFIX },
  { name: 'Authorization header', arg: `Authorization: Bearer ${SECRET}`, leak: PREFIX },
  { name: 'AKIA key id', arg: `key AKIA${SECRET.toUpperCase().slice(0, 16)} end`, leak: `AKIA${SECRET.toUpperCase().slice(0, 1)}` },
  { name: 'Vault token', arg: `VAULT hvs.${SECRET}`, leak: PREFIX },
  { name: 'secret flag in a JSON array', arg: `["kubectl","--token","${SECRET}","get","secrets"]`, leak: PREFIX },
  { name: 'PEM private key', arg: `-----BEGIN RSA PRIVATE KEY-----\nMIIE${SECRET}\n-----END RSA PRIVATE KEY-----`, leak: PREFIX },
  { name: 'NAME=value', arg: `PGPASSWORD=${SECRET} psql`, leak: PREFIX },
];

describe('redactBoundedArgv: a secret straddling a cut', () => {
  const window = MAX_ARG_CHARS + WINDOW_MARGIN;
  // Offsets around both cuts: the kept length (4096) and the window's end (5120).
  const offsets = [
    ...Array.from({ length: 80 }, (_, i) => MAX_ARG_CHARS - 70 + i),
    ...Array.from({ length: 80 }, (_, i) => window - 70 + i),
  ];
  for (const f of FORMS) {
    it(`${f.name}: gone at every cut position`, () => {
      const bad: number[] = [];
      for (const at of offsets) {
        const arg = `${'y'.repeat(at - 1)} ${f.arg} ${'z'.repeat(8000)}`;
        const out = redactBoundedArgv(['sh', '-c', arg]) as string[];
        if ((out[2] as string).includes(f.leak)) bad.push(at);
      }
      expect(bad).toEqual([]);
    });
  }

  it('keeps the head of a long argument with the bytes not kept, as boundArgv did', () => {
    const long = 'a'.repeat(MAX_ARG_CHARS) + 'é'.repeat(10);
    expect(redactBoundedArgv([long])).toEqual([`${'a'.repeat(MAX_ARG_CHARS)}…[+20 bytes]`]);
    const huge = 'b'.repeat(128 * 1024);
    expect(redactBoundedArgv([huge])).toEqual([`${'b'.repeat(MAX_ARG_CHARS)}…[+${128 * 1024 - MAX_ARG_CHARS} bytes]`]);
  });

  it('spends at most ARGV_WINDOW_BUDGET on one argv; past it each argument keeps MIN_ARG_WINDOW characters', () => {
    const argv = Array.from({ length: 300 }, (_, i) => `${i}`.padEnd(64 * 1024, 'q'));
    const out = redactBoundedArgv(argv) as string[];
    expect(out).toHaveLength(MAX_ARGS + 1);
    expect(out[MAX_ARGS]).toBe('…[+44 args]');
    const kept = out.slice(0, MAX_ARGS).map((a) => a.slice(0, a.indexOf('…')).length);
    expect(kept[0]).toBe(MAX_ARG_CHARS);
    expect(kept[MAX_ARGS - 1]).toBe(MIN_ARG_WINDOW);
    // The windows (kept + margin) add up to the budget, plus the minimum for the rest.
    const full = Math.floor(ARGV_WINDOW_BUDGET / (MAX_ARG_CHARS + WINDOW_MARGIN));
    expect(kept.filter((k) => k === MAX_ARG_CHARS).length).toBe(full);
    expect(kept.filter((k) => k === MIN_ARG_WINDOW).length).toBeGreaterThan(MAX_ARGS - full - 2);
  });

  it('a secret flag keeps its pairing across the window (the value is the next argument)', () => {
    const out = redactBoundedArgv(['kubectl', '--token', `${SECRET}${'x'.repeat(9000)}`, 'get', 'secrets']) as string[];
    expect(out[2]).toMatch(/^\[REDACTED\]…\[\+\d+ bytes\]$/);
    expect(out.slice(3)).toEqual(['get', 'secrets']);
  });

  it('leaves ordinary argv untouched', () => {
    const argv = ['curl', '-s', 'http://x/api', '--unix-socket', '/run/docker.sock'];
    expect(redactBoundedArgv(argv)).toEqual(argv);
    expect(redactBoundedArgv(null)).toBeNull();
  });
});

describe('redactCutText', () => {
  it('redacts what can only be the start of a secret at the end of a cut text', () => {
    expect(redactCutText(`curl https://admin:${SECRET}`)).toBe('curl https://admin:[REDACTED]');
    expect(redactCutText(`{"auths":{"r":{"auth":"${SECRET}`)).toBe('{"auths":{"r":{"auth":"[REDACTED]');
    expect(redactCutText('aws x AKIAQZ9W')).toBe('aws x [REDACTED]');
    expect(redactCutText(`t=eyJhbGci${SECRET}`)).not.toContain(PREFIX);
  });

  it('does not touch a text whose end is ordinary', () => {
    for (const s of ['curl https://example.com:8443/', 'echo {"name":"web"}', 'ls -la /tmp', 'AKIA is a prefix']) {
      expect(redactCutText(s)).toBe(redactText(s));
    }
  });
});

describe('PROCTITLE (cut by the kernel at 128 bytes)', () => {
  const title = (args: string[]): string => Buffer.from(args.join('\0')).subarray(0, 128).toString('hex').toUpperCase();
  const argv = ['curl', `https://admin:${SECRET}${'x'.repeat(200)}@registry.local/v2/`];
  const rec = { type: 'PROCTITLE', text: `type=PROCTITLE msg=audit(1.0:1): proctitle=${title(argv)}` };
  const decoded = (text: string): string => Buffer.from(/proctitle=([0-9A-F]+)/.exec(text)?.[1] ?? '', 'hex').toString('latin1');

  it('is re-rendered from the redacted argv when the event has one (at most as long as the kernel wrote)', () => {
    const [out] = redactRecords([rec], argv);
    const t = decoded(out?.text ?? '');
    expect(t).not.toContain(PREFIX);
    expect(t).toBe('curl\0https://admin:[REDACTED]@registry.local/v2/');
    const long = ['sh', '-c', 'echo ' + 'w'.repeat(300)];
    const [cut] = redactRecords([{ type: 'PROCTITLE', text: `type=PROCTITLE msg=audit(1.0:2): proctitle=${title(long)}` }], long);
    expect(decoded(cut?.text ?? '')).toBe(long.join('\0').slice(0, 128));
  });

  it('without an argv, its last argument is redacted as cut text', () => {
    const [out] = redactRecords([rec], null);
    expect(decoded(out?.text ?? '')).toBe('curl\0https://admin:[REDACTED]');
  });
});

describe('redactBoundedArgv past the window budget: every issue-15 form still redacted', () => {
  // Ten 8 KiB arguments right after argv0 spend the budget: each form's own arguments then get the
  // minimum window, and their secret (if it reaches into it) must still go.
  const filler = Array.from({ length: 10 }, (_, i) => `${'f'.repeat(8 * 1024)}${i}`);
  for (const c of hostCases((i) => `Zq${i}W8kx3Lm`)) {
    it(c.name, () => {
      const argv = [c.argv[0] as string, ...filler, ...c.argv.slice(1)];
      const out = (redactBoundedArgv(argv) as string[]).join('\n');
      expect(out).not.toContain(c.secret);
      expect(out).not.toContain(c.secret.slice(0, 8));
    });
  }
});
