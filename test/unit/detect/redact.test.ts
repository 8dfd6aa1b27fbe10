import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { REDACTED, redactArgv, redactRecordText, redactRecords, redactText, renderExecve } from '../../../src/detect/redact';

const JWT =
  'eyJhbGciOiJSUzI1NiIsImtpZCI6ImxhYiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpkZWZhdWx0In0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU';
const hex = (s: string): string => Buffer.from(s, 'utf8').toString('hex').toUpperCase();

/** Every form a JWT could survive in: plain, hex either case, and any 16-char piece of it. */
function leaks(text: string, secret: string): boolean {
  if (text.includes(secret) || text.toUpperCase().includes(hex(secret))) return true;
  for (let i = 0; i + 16 <= secret.length; i += 8) {
    const piece = secret.slice(i, i + 16);
    if (text.includes(piece) || text.toUpperCase().includes(hex(piece))) return true;
  }
  return false;
}

describe('redactText', () => {
  it.each([
    [`curl -H "Authorization: Bearer ${JWT}" https://x/api`, `curl -H "Authorization: Bearer ${REDACTED}" https://x/api`],
    ['Authorization: Bearer abcdefgh12345678', `Authorization: Bearer ${REDACTED}`],
    ['authorization: basic dXNlcjpwYXNz', `authorization: basic ${REDACTED}`],
    [`kubectl --token=${JWT} get secrets`, `kubectl --token=${REDACTED} get secrets`],
    ['kubectl --token sometokenvalue1234 get pods', `kubectl --token ${REDACTED} get pods`],
    ['mysql password=hunter2 user=x', `mysql password=${REDACTED} user=x`],
    ['PASSWD=x secret=y&z=1', `PASSWD=${REDACTED} secret=${REDACTED}&z=1`],
    [JWT.slice(0, 60), REDACTED], // a JWT cut short (PROCTITLE stops at 128 bytes)
  ])('%s', (input, want) => {
    expect(redactText(input)).toBe(want);
  });

  it('keeps the rest of the command line and is idempotent', () => {
    const once = redactText(`curl -sk -H "Authorization: Bearer ${JWT}" https://10.96.0.1/api/v1/secrets`);
    expect(once).toContain('https://10.96.0.1/api/v1/secrets');
    expect(redactText(once)).toBe(once);
  });
});

describe('redactArgv', () => {
  it('redacts the value after a bare --token and inside header arguments', () => {
    expect(redactArgv(['kubectl', '--token', 'opaque-value', 'get', 'pods'])).toEqual(['kubectl', '--token', REDACTED, 'get', 'pods']);
    expect(redactArgv(['curl', '-H', `Authorization: Bearer ${JWT}`])).toEqual(['curl', '-H', `Authorization: Bearer ${REDACTED}`]);
    expect(redactArgv(null)).toBeNull();
  });
});

describe('raw records', () => {
  it('redacts a hex-encoded EXECVE argument (a bearer header always is hex)', () => {
    const text = `audit(1.000:5): argc=4 a0="curl" a1="-H" a2=${hex(`Authorization: Bearer ${JWT}`)} a3="https://x/api/v1/secrets"`;
    const out = redactRecordText(text);
    expect(leaks(out, JWT)).toBe(false);
    expect(out).toContain(`a2=${hex(`Authorization: Bearer ${REDACTED}`)}`);
    expect(out).toContain('a3="https://x/api/v1/secrets"');
  });

  it('redacts PROCTITLE per NUL-separated argument, also when cut mid-token', () => {
    const title = ['curl', '--token', JWT].join('\0');
    const out = redactRecordText(`audit(1.000:5): proctitle=${hex(title).slice(0, 256)}`);
    expect(leaks(out, JWT)).toBe(false);
    expect(Buffer.from(out.split('proctitle=')[1] as string, 'hex').toString()).toBe(['curl', '--token', REDACTED].join('\0'));
  });

  it('re-renders EXECVE records that split a token across records', () => {
    const arg = `Authorization: Bearer ${JWT}`;
    const h = hex(arg);
    const recs = [
      { type: 'SYSCALL', text: 'audit(1.000:5): arch=c000003e syscall=59 success=yes exit=0 pid=1 comm="curl"' },
      { type: 'EXECVE', text: `audit(1.000:5): argc=3 a0="curl" a1="-H" a2_len=${arg.length} a2[0]=${h.slice(0, 100)}` },
      { type: 'EXECVE', text: `audit(1.000:5): a2[1]=${h.slice(100)}` },
    ];
    const out = redactRecords(recs, ['curl', '-H', arg]);
    expect(out.filter((r) => r.type === 'EXECVE')).toHaveLength(1);
    expect(leaks(JSON.stringify(out), JWT)).toBe(false);
    expect(out[1]?.text).toBe(renderExecve('audit(1.000:5): ', ['curl', '-H', `Authorization: Bearer ${REDACTED}`]));
  });

  it('property: no generated JWT survives in argv, hex EXECVE or PROCTITLE', () => {
    const b64url = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), minLength: 12, maxLength: 80 });
    fc.assert(
      fc.property(b64url, b64url, b64url, fc.constantFrom('bearer', 'token-flag', 'bare', 'env'), (a, b, c, form) => {
        const jwt = `eyJ${a}.${b}.${c}`;
        const arg = form === 'bearer' ? `Authorization: Bearer ${jwt}` : form === 'token-flag' ? `--token=${jwt}` : form === 'env' ? `TOKEN=${jwt}` : jwt;
        const argv = ['curl', '-H', arg, 'https://10.96.0.1/api/v1/secrets'];
        const recs = [
          { type: 'EXECVE', text: `audit(1.000:5): argc=4 a0="curl" a1="-H" a2=${hex(arg)} a3="https://10.96.0.1/api/v1/secrets"` },
          { type: 'PROCTITLE', text: `audit(1.000:5): proctitle=${hex(argv.join('\0')).slice(0, 256)}` },
        ];
        const out = JSON.stringify({ argv: redactArgv(argv), recs: redactRecords(recs, argv) });
        return !leaks(out, jwt.slice(3)) && !/eyJ[A-Za-z0-9_-]{8,}/.test(out);
      }),
      { numRuns: 300 },
    );
  });
});
