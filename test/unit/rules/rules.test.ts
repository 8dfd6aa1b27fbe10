import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AUDIT_RULE_HEADER_SIZE,
  RuleDecodeError,
  RuleSyntaxError,
  decodeRule,
  encodeRule,
  formatRule,
  parseRuleText,
  ruleKey,
  toKernelForm,
  type RuleEnvironment,
  type RuleField,
  type RuleSpec,
} from '../../../src/audit/rules';

/** A host where only /var/run/secrets and /etc are directories and alice is uid 1000. */
const host: RuleEnvironment = {
  isDirectory: (p) => p === '/var/run/secrets' || p === '/etc',
  userId: (n) => (n === 'alice' ? 1000 : n === 'root' ? 0 : undefined),
  groupId: (n) => (n === 'docker' ? 999 : undefined),
  machine: 'x86_64',
};
const parse = (line: string): RuleSpec => parseRuleText(line, host);

function maskWord(buf: Buffer, word: number): number {
  return buf.readUInt32LE(12 + word * 4);
}

describe('parseRuleText', () => {
  it('turns a syscall rule into list, action, syscalls and fields in auditctl order, key last', () => {
    const spec = parse('-a always,exit -F arch=b64 -S execve -k credwatch:exec -F auid>=1000 -F auid!=unset');
    expect(spec).toEqual({
      list: 'exit',
      action: 'always',
      prepend: false,
      syscalls: [59],
      fields: [
        { name: 'arch', op: '=', value: 0xc000003e },
        { name: 'auid', op: '>=', value: 1000 },
        { name: 'auid', op: '!=', value: 0xffffffff },
        { name: 'key', op: '=', value: 'credwatch:exec' },
      ],
    });
  });

  it('accepts exit,always as well as always,exit', () => {
    expect(parse('-a exit,always -S all -k k')).toEqual(parse('-a always,exit -S all -k k'));
  });

  it('uses the arch given before -S to pick the syscall table (open is 2 on b64, 5 on b32)', () => {
    expect(parse('-a always,exit -F arch=b64 -S open -k k').syscalls).toEqual([2]);
    expect(parse('-a always,exit -F arch=b32 -S open -k k').syscalls).toEqual([5]);
    expect(parse('-a always,exit -S open -k k').syscalls).toEqual([2]); // this machine's table
    expect(parse('-a always,exit -F arch=b32 -S socketcall -k k').syscalls).toEqual([102]);
  });

  it('merges comma lists and repeated -S, and accepts syscall numbers', () => {
    expect(parse('-a always,exit -F arch=b64 -S openat2,open -S openat -S 451 -k k').syscalls).toEqual([2, 257, 437, 451]);
  });

  it('accepts libaudit spellings and kernel-header spellings where they differ', () => {
    expect(parse('-a always,exit -F arch=b64 -S pread -k k').syscalls).toEqual([17]);
    expect(parse('-a always,exit -F arch=b64 -S pread64 -k k').syscalls).toEqual([17]);
  });

  it('gives non-task rules without -S every syscall, as auditctl does', () => {
    const spec = parse('-a always,exit -F exe=/usr/bin/curl -k k');
    expect(spec.syscalls).toBe('all');
    const buf = encodeRule(spec);
    for (let w = 0; w < 64; w++) expect(maskWord(buf, w)).toBe(0xffffffff);
  });

  it('turns -w on a file into path= and on a directory into dir=, with perm defaulting to rwxa', () => {
    expect(parse('-w /var/run/secrets/ -p r -k tok').fields).toEqual([
      { name: 'dir', op: '=', value: '/var/run/secrets' },
      { name: 'perm', op: '=', value: 4 },
      { name: 'key', op: '=', value: 'tok' },
    ]);
    expect(parse('-w /root/.kube/config').fields).toEqual([
      { name: 'path', op: '=', value: '/root/.kube/config' },
      { name: 'perm', op: '=', value: 15 },
    ]);
    expect(parse('-w /root/.kube/config').syscalls).toBe('all');
  });

  it('joins several keys with \\x01 and reads -F key= the same as -k', () => {
    const spec = parse('-a always,exit -S ptrace -k one -F key=two');
    expect(spec.fields.at(-1)).toEqual({ name: 'key', op: '=', value: 'one\x01two' });
    expect(ruleKey(encodeRule(spec))).toEqual(['one', 'two']);
  });

  it('parses every operator, with two-character operators found first', () => {
    const spec = parse('-a always,exit -S all -F a0&1 -F a1&=2 -F a2<3 -F a3>4 -F pid<=5 -F ppid>=6 -F uid!=7 -F gid=8 -k k');
    expect(spec.fields.slice(0, 8).map((f) => f.op)).toEqual(['&', '&=', '<', '>', '<=', '>=', '!=', '=']);
  });

  it('reads values the way libaudit does', () => {
    const values = (line: string): (number | string)[] => parse(line).fields.map((f) => f.value);
    expect(values('-a always,exit -S all -F uid=-1 -F auid=unset -F euid=alice -F gid=docker -F a0=0x10 -F a1=010 -F a2=-2')).toEqual([
      0xffffffff, 0xffffffff, 1000, 999, 16, 8, 0xfffffffe,
    ]);
    expect(values('-a always,exit -S all -F exit=-EACCES -F exit=-13 -F exit=EWOULDBLOCK -F perm=wa -F filetype=dir')).toEqual([
      0xfffffff3, 0xfffffff3, 11, 10, 0o040000,
    ]);
    expect(values('-a always,exclude -F msgtype=CRYPTO_KEY_USER -F msgtype=1300')).toEqual([2404, 1300]);
    expect(values('-a always,exit -S all -F loginuid=5 -F sessionid=unset -F saddr_fam=1 -F success=0 -k k')).toEqual([
      5, 0xffffffff, 1, 0, 'k',
    ]);
    expect(parse('-a always,exit -S all -F loginuid=5 -k k').fields[0]?.name).toBe('auid');
  });

  it('encodes -C field comparisons', () => {
    expect(parse('-a always,exit -S execve -C uid!=euid -k k').fields[0]).toEqual({ name: 'field_compare', op: '!=', value: 11 });
    expect(parse('-a always,exit -S execve -C euid=uid -k k').fields[0]).toEqual({ name: 'field_compare', op: '=', value: 11 });
  });

  it('sets AUDIT_FILTER_PREPEND for -A', () => {
    const buf = encodeRule(parse('-A never,exit -S all -F pid=42 -k credwatch:self'));
    expect(buf.readUInt32LE(0)).toBe(0x14);
    expect(toKernelForm(buf).readUInt32LE(0)).toBe(0x04);
  });

  it('handles quotes and backslash-escaped blanks in paths', () => {
    expect(parse(`-w "/folder with space" -k a`).fields[0]?.value).toBe('/folder with space');
    expect(parse(`-w '/folder with space' -k a`).fields[0]?.value).toBe('/folder with space');
    expect(parse(`-w /folder\\ with\\ space -k a`).fields[0]?.value).toBe('/folder with space');
  });
});

describe('parse errors name the token and its column', () => {
  const cases: [string, string, string][] = [
    ['-a always,exit -F arch=b64 -S nosuchcall -k k', 'nosuchcall', 'syscall name unknown'],
    ['-a always,exit -F arch=b64 -S open,bogus -k k', 'bogus', 'syscall name unknown'],
    ['-a always,exit -F arch=b64 -S socketcall -k k', 'socketcall', 'syscall name unknown on x86_64'],
    ['-a always,exit -S execve -F arch=b64 -k k', 'b64', 'arch must be given before -S'],
    ['-a always,exit -S execve -F nosuch=1 -k k', 'nosuch=1', 'unknown field'],
    ['-a always,exit -S execve -F uid -k k', 'uid', 'needs an operator'],
    ['-a always,exit -S execve -F uid= -k k', 'uid=', 'value is missing'],
    ['-a always,exit -S execve -F uid=nobody_here -k k', 'nobody_here', 'unknown user'],
    ['-a always,exit -S execve -F pid=12x -k k', '12x', 'pid needs a number'],
    ['-a always,exit -S execve -F a0=5000000000 -k k', '5000000000', 'a0 needs a number'],
    ['-a always,exit -S execve -F exit=-ENOPE -k k', '-ENOPE', 'unknown errno name'],
    ['-a always,exit -S execve -F perm=rwq -k k', 'rwq', 'permissions must be'],
    ['-a always,exit -S execve -F exe!=/bin/sh -k k', '/bin/sh', 'exe supports only ='],
    ['-a always,exit -F arch>b64 -S execve -k k', 'b64', 'arch supports only'],
    ['-a always,exit -S execve -F msgtype=1300 -k k', '1300', 'msgtype is only valid'],
    ['-a always,task -S execve', 'execve', 'cannot be added to the task list'],
    ['-a always,user -F path=/etc/passwd', 'path=/etc/passwd', 'only valid on the exit list'],
    ['-a always,exclude -F euid=0', 'euid=0', 'cannot be used on the exclude list'],
    ['-a sometimes,exit -S all', 'sometimes,exit', 'bad action'],
    ['-a always,entry -S all', 'always,entry', 'entry list is deprecated'],
    ['-a always,exit,task -S all', 'always,exit,task', 'expected list,action'],
    ['-a always,exit -S all -a always,exit', 'always,exit', 'multiple rule'],
    ['-F uid=0 -a always,exit', '-F', 'list must be given before field'],
    ['-S execve -k k', '-k', 'key option needs a watch or syscall'],
    ['-a always,exit -F uid=0 -k k', '-k', 'key option needs a watch or syscall'],
    ['-a always,exit -F uid=0 -F key=k', 'key=k', 'key field needs a syscall'],
    ['-a always,exit -S all -k', '-k', 'needs a value'],
    ['-a always,exit -S all -D', '-D', 'unsupported option -D'],
    ['-a always,exit -S all stray', 'stray', 'parameter passed without an option'],
    ['-w relative/path', 'relative/path', "must start with '/'"],
    ['-a always,exit -S all -w /etc/passwd', '/etc/passwd', "watch option can't be given"],
    ['-p wa -w /etc/passwd', '-p', 'permission option needs a watch'],
    ['-w "/unterminated -k k', '"/unterminated -k k', 'unterminated quote'],
    ['-a always,exit -S execve -C uid=gid -k k', 'uid=gid', 'unsupported field comparison'],
    ['   ', '', 'empty rule'],
  ];
  for (const [line, token, reason] of cases) {
    it(`${line.trim() || '(blank)'} -> ${reason}`, () => {
      let caught: unknown;
      try {
        parse(line);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(RuleSyntaxError);
      const e = caught as RuleSyntaxError;
      expect(e.reason).toContain(reason);
      expect(e.token).toBe(token);
      expect(e.rule).toBe(line);
      if (token !== '') expect(line.slice(e.position, e.position + token.length)).toBe(token);
      expect(e.message).toContain(`column ${e.position + 1}`);
    });
  }

  it('rejects keys longer than 256 bytes in total', () => {
    const long = 'k'.repeat(200);
    expect(() => parse(`-a always,exit -S all -k ${long} -k ${long}`)).toThrow(RuleSyntaxError);
  });
});

describe('encodeRule layout', () => {
  it('is 1040 bytes plus the strings, with values holding string lengths', () => {
    const buf = encodeRule(parse('-a always,exit -F arch=b64 -S execve -F exe=/usr/bin/curl -k credwatch:x'));
    expect(AUDIT_RULE_HEADER_SIZE).toBe(1040);
    expect(buf.length).toBe(1040 + '/usr/bin/curl'.length + 'credwatch:x'.length);
    expect(buf.readUInt32LE(0)).toBe(4); // exit list
    expect(buf.readUInt32LE(4)).toBe(2); // always
    expect(buf.readUInt32LE(8)).toBe(3); // arch, exe, key
    expect(maskWord(buf, 1)).toBe(1 << (59 - 32)); // execve = 59
    expect(buf.readUInt32LE(268)).toBe(11);
    expect(buf.readUInt32LE(272)).toBe(112);
    expect(buf.readUInt32LE(276)).toBe(210);
    expect(buf.readUInt32LE(524 + 4)).toBe(13);
    expect(buf.readUInt32LE(780)).toBe(0x40000000);
    expect(buf.readUInt32LE(1036)).toBe(24);
    expect(buf.subarray(1040).toString()).toBe('/usr/bin/curlcredwatch:x');
  });

  it('accepts rule text directly', () => {
    const line = '-a never,exit -S all -F pid=4242 -k credwatch:self';
    expect(encodeRule(line)).toEqual(encodeRule(parseRuleText(line)));
  });

  it('refuses specs that do not fit the structure', () => {
    const base = parse('-a always,exit -S execve -k k');
    expect(() => encodeRule({ ...base, fields: [{ name: 'uid', op: '=', value: 'root' }] })).toThrow(TypeError);
    expect(() => encodeRule({ ...base, fields: [{ name: 'key', op: '=', value: 7 }] })).toThrow(TypeError);
    expect(() => encodeRule({ ...base, fields: [{ name: 'nosuch', op: '=', value: 7 }] })).toThrow(TypeError);
    expect(() => encodeRule({ ...base, syscalls: [2048] })).toThrow(RangeError);
    expect(() => encodeRule({ ...base, fields: Array.from({ length: 65 }, () => ({ name: 'uid', op: '=', value: 0 }) as RuleField) })).toThrow(
      RangeError,
    );
  });
});

describe('decodeRule', () => {
  it('refuses short or inconsistent payloads with RuleDecodeError', () => {
    const good = encodeRule(parse('-w /etc/shadow -p r -k credwatch:shadow'));
    expect(() => decodeRule(good.subarray(0, 1000))).toThrow(RuleDecodeError);
    expect(() => decodeRule(good.subarray(0, good.length - 1))).toThrow(RuleDecodeError);
    const badCount = Buffer.from(good);
    badCount.writeUInt32LE(65, 8);
    expect(() => decodeRule(badCount)).toThrow(RuleDecodeError);
    const badOp = Buffer.from(good);
    badOp.writeUInt32LE(0x7, 780);
    expect(() => decodeRule(badOp)).toThrow(RuleDecodeError);
    expect(ruleKey(good.subarray(0, 10))).toEqual([]);
  });

  it('reads a kernel-form payload (class bits cleared) as -S all', () => {
    const spec = parse('-a always,exit -S all -F exit=-EINVAL -k k');
    expect(decodeRule(toKernelForm(encodeRule(spec)))).toEqual(spec);
  });

  it('names fields it does not know f<id> and keeps them through a round trip', () => {
    const buf = encodeRule(parse('-a always,exit -S execve -F uid=0 -k k'));
    buf.writeUInt32LE(24, 268); // AUDIT_LOGINUID_SET, which auditctl 3.0.9 cannot write
    const spec = decodeRule(buf);
    expect(spec.fields[0]).toEqual({ name: 'f24', op: '=', value: 0 });
    expect(encodeRule(spec)).toEqual(buf);
  });
});

describe('round trips', () => {
  const lines = [
    '-a always,exit -F arch=b64 -S execve -k credwatch:exec',
    '-a always,exit -F arch=b32 -S execve,execveat -F auid>=1000 -F auid!=-1 -k credwatch:exec32',
    '-w /var/run/secrets -p r -k credwatch:token',
    '-w /root/.kube/config -p rwa -k credwatch:kubeconfig',
    '-a always,exit -F arch=b64 -S connect -F success=1 -F saddr_fam=1 -k credwatch:unix',
    '-a never,exit -S all -F pid=4242 -k credwatch:self',
    '-a always,exit -F arch=b64 -S openat -F dir=/var/run/secrets -F perm=r -k credwatch:dir',
    '-a always,exit -F arch=b64 -S socket -F a0&1 -F a1&=2 -F exit=-EACCES -k credwatch:bits',
    '-a always,exit -F arch=b64 -S execve -C uid!=euid -F euid=0 -k credwatch:setuid',
    '-a always,exit -F arch=b64 -S pread,pwrite,451 -k a -k b',
  ];
  for (const line of lines) {
    it(`decode(encode(x)) = x and parse(format(x)) = x for ${line}`, () => {
      const spec = parse(line);
      expect(decodeRule(encodeRule(spec))).toEqual(spec);
      expect(parse(formatRule(spec, 'x86_64'))).toEqual(spec);
    });
  }

  it('formats as auditctl -l prints (checked against the real one in test/integration/rules)', () => {
    expect(formatRule(parse('-w /var/run/secrets/ -p r -k credwatch:token'), 'x86_64')).toBe('-w /var/run/secrets -p r -k credwatch:token');
    expect(formatRule(parse('-a exit,always -F arch=b64 -S openat,open -F auid!=unset -k a -k b'), 'x86_64')).toBe(
      '-a always,exit -F arch=b64 -S open,openat -F auid!=-1 -F key=a -F key=b',
    );
    expect(formatRule(parse('-a always,exit -F arch=b32 -S socketcall -F a0=3 -F exit=13 -F filetype=file -k k'), 'x86_64')).toBe(
      '-a always,exit -F arch=b32 -S socketcall -F a0=0x3 -F exit=13 -F filetype=32768 -F key=k',
    );
  });

  const op = fc.constantFrom<RuleField['op']>('=', '!=', '<', '>', '<=', '>=', '&', '&=');
  const numericField = fc.record({
    name: fc.constantFrom('pid', 'uid', 'euid', 'gid', 'auid', 'ppid', 'success', 'saddr_fam', 'a0', 'a1', 'a2', 'a3', 'exit', 'devmajor'),
    op,
    value: fc.integer({ min: 0, max: 0xffffffff }),
  });
  const stringField = fc.record({
    name: fc.constantFrom('path', 'dir', 'exe', 'key'),
    op: fc.constant<RuleField['op']>('='),
    value: fc.string({ minLength: 1, maxLength: 40 }),
  });
  const spec = fc.record({
    list: fc.constant<RuleSpec['list']>('exit'),
    action: fc.constantFrom<RuleSpec['action']>('always', 'never'),
    prepend: fc.boolean(),
    syscalls: fc.oneof(
      fc.constant<'all'>('all'),
      fc.uniqueArray(fc.integer({ min: 0, max: 2047 }), { maxLength: 20 }).map((a) => a.sort((x, y) => x - y)),
    ),
    fields: fc.array(fc.oneof(numericField, stringField), { maxLength: 64 }),
  });

  it('decodeRule(encodeRule(spec)) equals spec for any spec that fits the structure', () => {
    fc.assert(
      fc.property(spec, (s) => {
        // A mask whose first 63 words are full reads back as "all", as auditctl reads it.
        const full = s.syscalls !== 'all' && s.syscalls.length >= 63 * 32;
        if (full) return;
        expect(decodeRule(encodeRule(s))).toEqual(s);
      }),
      { numRuns: 300 },
    );
  });
});
