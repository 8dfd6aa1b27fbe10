/**
 * The kernel's `struct audit_rule_data` (linux/audit.h), built from auditctl rule text and read back.
 *
 * The goal is byte-for-byte agreement with Debian's auditctl (3.0.9): the same rule text must produce
 * the same AUDIT_ADD_RULE payload, so that the kernel's rule list and `auditctl -l` look exactly as if
 * an operator had typed the rule, and so that AUDIT_DEL_RULE with our payload removes exactly our rule.
 * Parsing follows auditctl's setopt()/libaudit's audit_rule_fieldpair_data(). Checked against the
 * real auditctl and kernel in test/integration/rules and against go-libaudit's recorded payloads in
 * test/unit/rules. Where we knowingly differ from auditctl 3.0.9:
 *  - stricter: a number with trailing junk (`pid=12x`), an unparsable `sessionid=`, a value beyond 32
 *    bits, and `exe!=` (3.0.9 accepts it but lists it as `exe=`) are RuleSyntaxErrors, not silently
 *    rewritten;
 *  - more lenient: kernel-header syscall spellings libaudit lacks (`pread64`, i386 `kexec_load`) are
 *    accepted beside libaudit's; rule text may quote ('...', "...") and backslash-escape blanks;
 *  - io_uring (AUDIT_FILTER_URING_EXIT, list 7): Debian's auditctl 3.0.9 is built without it ("bad
 *    keyword always,io_uring"), so those rules are checked against the kernel's own read-back
 *    (test/integration/rules/uring-rules.test.ts): `-S` takes io_uring op names (src/audit/uring-ops.ts),
 *    `-F arch` is refused (op numbers do not depend on the arch);
 *  - out of scope: -d/-D/-W/-e and the other control options, filesystem `fstype=`,
 *    machines other than x86_64/i386 (syscall names need one of those two tables).
 *
 * Layout (all u32, host order = little endian on the machines we support):
 *   flags | action | field_count | mask[64] | fields[64] | values[64] | fieldflags[64] | buflen | buf[buflen]
 * String-valued fields (path, dir, exe, key, LSM labels) carry their byte length in values[] and their
 * text, unterminated, concatenated in buf in field order.
 */
import { statSync, readFileSync } from 'node:fs';
import { posix as posixPath } from 'node:path';
import {
  AUDIT_DIR,
  AUDIT_FILTERKEY,
  AUDIT_WATCH,
  COMPARE_PAIRS,
  FIELD_BY_ID,
  FIELD_BY_NAME,
  FILE_TYPES,
  MSG_TYPE_NAMES,
  PERM_BITS,
  isStringField,
  type FieldDef,
} from './rule-fields';
import { ERRNO_ALIASES, ERRNO_NAMES } from './errno-table';
import { AUDIT_ARCH_I386, AUDIT_ARCH_X86_64 } from './syscall-names';
import { I386_SYSCALL_ALIASES, I386_SYSCALL_NAMES } from './syscalls-i386';
import { X86_64_SYSCALL_ALIASES, X86_64_SYSCALL_NAMES } from './syscalls-x86_64';
import { URING_OP_BY_NAME, URING_OP_NAMES } from './uring-ops';

// ---------------------------------------------------------------------------------------------
// Public types

export type RuleList = 'user' | 'task' | 'exit' | 'exclude' | 'filesystem' | 'io_uring';
export type RuleAction = 'never' | 'always';
export type RuleOperator = '=' | '!=' | '<' | '>' | '<=' | '>=' | '&' | '&=';

export interface RuleField {
  /** auditctl's field name (`auid`, `path`, `key`, ...); `f<id>` for an id we have no name for. */
  readonly name: string;
  readonly op: RuleOperator;
  /** u32 for numeric fields (so `auid!=unset` is 4294967295); the text for string fields. A key
   * field holds all of a rule's keys joined with \x01, as auditctl sends them. */
  readonly value: number | string;
}

export interface RuleSpec {
  readonly list: RuleList;
  readonly action: RuleAction;
  /** `-A`: insert at the head of the list (AUDIT_FILTER_PREPEND). */
  readonly prepend: boolean;
  /** `all`, or the syscall numbers (of the rule's arch) whose mask bits are set, ascending. */
  readonly syscalls: 'all' | readonly number[];
  /** In wire order; auditctl puts keys last. */
  readonly fields: readonly RuleField[];
}

/** Bad rule text: names the offending token and its 0-based column in the rule. */
export class RuleSyntaxError extends Error {
  override readonly name = 'RuleSyntaxError';
  constructor(
    readonly reason: string,
    readonly rule: string,
    readonly token: string,
    readonly position: number,
  ) {
    super(`${reason}: "${token}" at column ${position + 1} of rule: ${rule}`);
  }
}

/** A payload that is not a well-formed audit_rule_data. */
export class RuleDecodeError extends Error {
  override readonly name = 'RuleDecodeError';
}

/** What parsing may look up on the host (a seam so tests need not depend on this machine). */
export interface RuleEnvironment {
  /** auditctl stats a watched path: a directory becomes `dir=`, anything else `path=`. */
  isDirectory(path: string): boolean;
  userId(name: string): number | undefined;
  groupId(name: string): number | undefined;
  /** The machine whose syscall table applies when a rule names syscalls without `-F arch=`. */
  readonly machine: Machine;
}

export type Machine = 'x86_64' | 'i386';

// ---------------------------------------------------------------------------------------------
// Wire constants (linux/audit.h)

const BITMASK_WORDS = 64;
const MAX_FIELDS = 64;
const OFF_FLAGS = 0;
const OFF_ACTION = 4;
const OFF_FIELD_COUNT = 8;
const OFF_MASK = 12;
const OFF_FIELDS = OFF_MASK + BITMASK_WORDS * 4;
const OFF_VALUES = OFF_FIELDS + MAX_FIELDS * 4;
const OFF_FIELDFLAGS = OFF_VALUES + MAX_FIELDS * 4;
const OFF_BUFLEN = OFF_FIELDFLAGS + MAX_FIELDS * 4;
/** sizeof(struct audit_rule_data) without buf. */
export const AUDIT_RULE_HEADER_SIZE = OFF_BUFLEN + 4; // 1040

const AUDIT_FILTER_PREPEND = 0x10;
const AUDIT_FILTER_MASK = 0x07;
const AUDIT_MAX_KEY_LEN = 256;
const PATH_MAX = 4096;
const NAME_MAX = 255;
const KEY_SEPARATOR = '\x01';
/** The top 16 mask bits name syscall classes; the kernel expands and clears them (audit_to_entry_common). */
const CLASS_MARKER_BITS_WORD63 = 0xffff0000;

const LIST_IDS: Readonly<Record<RuleList, number>> = { user: 0, task: 1, exit: 4, exclude: 5, filesystem: 6, io_uring: 7 };
const LIST_BY_ID: ReadonlyMap<number, RuleList> = new Map(Object.entries(LIST_IDS).map(([k, v]) => [v, k as RuleList]));
const ACTION_IDS: Readonly<Record<RuleAction, number>> = { never: 0, always: 2 };

const OP_IDS: Readonly<Record<RuleOperator, number>> = {
  '&': 0x08000000,
  '<': 0x10000000,
  '>': 0x20000000,
  '!=': 0x30000000,
  '=': 0x40000000,
  '&=': 0x48000000,
  '<=': 0x50000000,
  '>=': 0x60000000,
};
const OP_BY_ID: ReadonlyMap<number, RuleOperator> = new Map(Object.entries(OP_IDS).map(([k, v]) => [v, k as RuleOperator]));
/** libaudit looks for two-character operators first, then one-character ones, anywhere in `f<op>v`. */
const OP_SEARCH_ORDER: readonly RuleOperator[] = ['!=', '>=', '<=', '&=', '=', '>', '<', '&'];


interface SyscallTable {
  readonly names: ReadonlyMap<number, string>;
  readonly byName: ReadonlyMap<string, number>;
}
function syscallTable(names: ReadonlyMap<number, string>, aliases: ReadonlyMap<string, number>): SyscallTable {
  const byName = new Map<string, number>(aliases);
  for (const [nr, name] of names) byName.set(name, nr);
  return { names, byName };
}
const SYSCALLS: Readonly<Record<Machine, SyscallTable>> = {
  x86_64: syscallTable(X86_64_SYSCALL_NAMES, X86_64_SYSCALL_ALIASES),
  i386: syscallTable(I386_SYSCALL_NAMES, I386_SYSCALL_ALIASES),
};
const URING_TABLE: SyscallTable = syscallTable(URING_OP_NAMES, URING_OP_BY_NAME);

const ERRNO_BY_NAME: ReadonlyMap<string, number> = (() => {
  const m = new Map<string, number>();
  for (const [nr, name] of ERRNO_NAMES) m.set(name, nr);
  for (const [alias, target] of ERRNO_ALIASES) {
    const nr = m.get(target);
    if (nr !== undefined && !m.has(alias)) m.set(alias, nr);
  }
  return m;
})();
const MSG_TYPE_BY_NAME: ReadonlyMap<string, number> = new Map([...MSG_TYPE_NAMES].map(([nr, name]) => [name, nr]));
const COMPARE_BY_PAIR: ReadonlyMap<string, number> = (() => {
  const m = new Map<string, number>();
  for (const [id, [a, b]] of COMPARE_PAIRS) {
    m.set(`${a} ${b}`, id);
    m.set(`${b} ${a}`, id);
  }
  return m;
})();

// ---------------------------------------------------------------------------------------------
// Host environment

function machineOfThisProcess(): Machine {
  return process.arch === 'ia32' ? 'i386' : 'x86_64';
}

function lookupColonFile(file: string, name: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const parts = line.split(':');
    if (parts[0] === name && parts[2] !== undefined && /^\d+$/.test(parts[2])) return Number(parts[2]);
  }
  return undefined;
}

/** The real host: stat(2) for watches, /etc/passwd and /etc/group for names (as getpwnam would, minus NSS). */
export const systemRuleEnvironment: RuleEnvironment = {
  isDirectory(path: string): boolean {
    try {
      return statSync(path).isDirectory();
    } catch {
      return false;
    }
  },
  userId: (name) => lookupColonFile('/etc/passwd', name),
  groupId: (name) => lookupColonFile('/etc/group', name),
  machine: machineOfThisProcess(),
};

// ---------------------------------------------------------------------------------------------
// Tokenising

interface Token {
  readonly text: string;
  readonly start: number;
}

/** Splits on blanks; '...' and "..." quote, backslash escapes the next character (auditctl's `\ `). */
function tokenize(line: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i] as string)) i++;
    if (i >= line.length) break;
    const start = i;
    let text = '';
    while (i < line.length && !/\s/.test(line[i] as string)) {
      const c = line[i] as string;
      if (c === '"' || c === "'") {
        const close = line.indexOf(c, i + 1);
        if (close < 0) throw new RuleSyntaxError('unterminated quote', line, line.slice(i), i);
        text += line.slice(i + 1, close);
        i = close + 1;
      } else if (c === '\\' && i + 1 < line.length) {
        text += line[i + 1];
        i += 2;
      } else {
        text += c;
        i++;
      }
    }
    tokens.push({ text, start });
  }
  return tokens;
}

// ---------------------------------------------------------------------------------------------
// Numbers as C's strtol/strtoul(…, 0) read them, but the whole text must be the number.

const C_INTEGER = /^([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/;

function parseCInteger(text: string): number | undefined {
  const m = C_INTEGER.exec(text);
  if (!m) return undefined;
  const digits = m[2] as string;
  let n: number;
  if (/^0[xX]/.test(digits)) n = parseInt(digits.slice(2), 16);
  else if (digits.length > 1 && digits.startsWith('0')) n = parseInt(digits.slice(1), 8);
  else n = parseInt(digits, 10);
  return m[1] === '-' ? -n : n;
}

/** Wraps a C long into the u32 the kernel stores (so -1 becomes 4294967295). */
function toU32(n: number): number | undefined {
  if (!Number.isSafeInteger(n) || n < -0x80000000 || n > 0xffffffff) return undefined;
  return n >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Parsing

interface ParseState {
  list: RuleList | undefined;
  action: RuleAction | undefined;
  prepend: boolean;
  elf: number | undefined;
  mask: Uint32Array;
  syscallAdded: boolean;
  permAdded: boolean;
  exeAdded: boolean;
  fields: RuleField[];
  keys: string[];
  keyFromF: Token | undefined;
}

const ALL_LISTS: ReadonlySet<string> = new Set(['user', 'task', 'exit', 'exclude', 'filesystem', 'io_uring']);

/**
 * Parses one auditctl rule (`-a always,exit -F arch=b64 -S execve -k credwatch:exec`, or
 * `-w /path -p wa -k key`) into a RuleSpec with fields in the order auditctl would send them.
 */
export function parseRuleText(line: string, env: RuleEnvironment = systemRuleEnvironment): RuleSpec {
  const tokens = tokenize(line);
  if (tokens.length === 0) throw new RuleSyntaxError('empty rule', line, '', 0);
  const st: ParseState = {
    list: undefined,
    action: undefined,
    prepend: false,
    elf: undefined,
    mask: new Uint32Array(BITMASK_WORDS),
    syscallAdded: false,
    permAdded: false,
    exeAdded: false,
    fields: [],
    keys: [],
    keyFromF: undefined,
  };
  const fail = (reason: string, tok: Token): never => {
    throw new RuleSyntaxError(reason, line, tok.text, tok.start);
  };

  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i] as Token;
    if (!/^-[a-zA-Z]/.test(tok.text)) fail('parameter passed without an option given', tok);
    const opt = tok.text[1] as string;
    if (!'aAwpkSFC'.includes(opt)) {
      fail(`unsupported option -${opt} (only -a, -A, -w, -p, -k, -S, -F, -C build rules)`, tok);
    }
    let arg: Token;
    if (tok.text.length > 2) {
      arg = { text: tok.text.slice(2), start: tok.start + 2 };
    } else {
      const next = tokens[i + 1];
      if (next === undefined) return fail(`option -${opt} needs a value`, tok);
      arg = next;
      i++;
    }
    switch (opt) {
      case 'a':
      case 'A':
        parseListAction(st, arg, opt === 'A', fail);
        break;
      case 'w':
        parseWatch(st, arg, env, fail);
        break;
      case 'p':
        if (st.list === undefined) fail('permission option needs a watch given prior to it', tok);
        parsePermOption(st, arg, fail);
        break;
      case 'k':
        if (!(st.syscallAdded || st.permAdded || st.exeAdded) || st.list === undefined) {
          fail('key option needs a watch or syscall given prior to it', tok);
        }
        addKey(st, arg, fail);
        break;
      case 'S':
        parseSyscalls(st, arg, env, fail);
        break;
      case 'F':
        if (st.list === undefined) fail('list must be given before field', tok);
        if (arg.text.startsWith('key=')) {
          st.keyFromF ??= arg;
          addKey(st, { text: arg.text.slice(4), start: arg.start + 4 }, fail);
        } else {
          parseFieldPair(st, arg, env, fail);
        }
        break;
      case 'C':
        if (st.list === undefined) fail('list must be given before field comparison', tok);
        parseCompare(st, arg, fail);
        break;
    }
  }

  const last = tokens[tokens.length - 1] as Token;
  if (st.list === undefined || st.action === undefined) return fail('no list given (-a, -A or -w)', last);
  if (st.keys.length > 0) {
    // libaudit checks a key added through -F key= only when the rule is complete (error -19).
    if (st.keyFromF && !(st.syscallAdded || st.permAdded || st.exeAdded)) {
      fail('key field needs a syscall, watch or exe given before it', st.keyFromF);
    }
    if (st.fields.length >= MAX_FIELDS - 1) fail('too many fields in rule', last);
    st.fields.push({ name: 'key', op: '=', value: st.keys.join(KEY_SEPARATOR) });
  }
  // Non-task rules without -S get every syscall (auditctl's handle_request).
  if (st.list !== 'task' && !st.syscallAdded) st.mask.fill(0xffffffff);
  const syscalls = isAllSyscalls(st.mask) ? 'all' : maskToSyscalls(st.mask);
  return { list: st.list, action: st.action, prepend: st.prepend, syscalls, fields: st.fields };
}

type Fail = (reason: string, tok: Token) => never;

function parseListAction(st: ParseState, arg: Token, prepend: boolean, fail: Fail): void {
  if (st.list !== undefined) fail('multiple rule insert/delete operations are not allowed', arg);
  const parts = arg.text.split(',');
  if (parts.length !== 2) fail('expected list,action (e.g. always,exit)', arg);
  let [a, b] = parts as [string, string];
  if (a === 'possible' || b === 'possible') fail('action "possible" is deprecated', arg);
  if (ALL_LISTS.has(a)) [a, b] = [b, a];
  if (a !== 'always' && a !== 'never') fail('bad action (always or never)', arg);
  if (b === 'entry') fail('the entry list is deprecated; use exit', arg);
  if (!ALL_LISTS.has(b)) fail('bad list (exit, task, user, exclude, filesystem, io_uring)', arg);
  const list = b as RuleList;
  if (list === 'task' && st.syscallAdded) fail('syscall auditing requested for task list', arg);
  st.list = list;
  st.action = a as RuleAction;
  st.prepend = prepend;
}

function parseWatch(st: ParseState, arg: Token, env: RuleEnvironment, fail: Fail): void {
  if (st.list !== undefined) fail("watch option can't be given with a syscall rule", arg);
  let path = arg.text;
  if (path.length >= PATH_MAX) fail('the path passed for the watch is too big', arg);
  if (!path.startsWith('/')) fail("the path must start with '/'", arg);
  if (posixPath.basename(path).length > NAME_MAX) fail('the base name of the path is too big', arg);
  // auditctl trims trailing slashes (but leaves "/" and "//" alone), then stats the path.
  if (path.length > 2) while (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  const name = env.isDirectory(path) ? 'dir' : 'path';
  st.list = 'exit';
  st.action = 'always';
  st.syscallAdded = true;
  st.permAdded = true;
  st.mask.fill(0xffffffff);
  st.fields.push({ name, op: '=', value: path }, { name: 'perm', op: '=', value: 15 });
}

function parsePerm(text: string): number | undefined {
  if (text.length === 0 || text.length > 4) return undefined;
  let val = 0;
  for (const c of text.toLowerCase()) {
    const bit = PERM_BITS.find(([letter]) => letter === c);
    if (!bit) return undefined;
    val |= bit[1];
  }
  return val;
}

function parsePermOption(st: ParseState, arg: Token, fail: Fail): void {
  const val = parsePerm(arg.text);
  if (val === undefined) return fail('permissions must be 1 to 4 of r, w, x, a', arg);
  // audit_update_watch_perms: rewrite every perm field, or append one.
  if (st.fields.length < 1) fail('permission option needs a watch given prior to it', arg);
  let done = false;
  st.fields = st.fields.map((f) => {
    if (f.name !== 'perm') return f;
    done = true;
    return { name: 'perm', op: f.op, value: val };
  });
  if (!done) {
    if (st.fields.length >= MAX_FIELDS - 1) fail('too many fields in rule', arg);
    st.fields.push({ name: 'perm', op: '=', value: val });
  }
  st.permAdded = true;
}

function addKey(st: ParseState, arg: Token, fail: Fail): void {
  const key = arg.text;
  if (key.length === 0) fail('key option needs a value', arg);
  if (key.includes(KEY_SEPARATOR)) fail('key has an illegal character (\\x01)', arg);
  const joined = [...st.keys, key].join(KEY_SEPARATOR);
  if (Buffer.byteLength(joined) > AUDIT_MAX_KEY_LEN) fail(`keys exceed ${AUDIT_MAX_KEY_LEN} bytes`, arg);
  st.keys.push(key);
}

function parseSyscalls(st: ParseState, arg: Token, env: RuleEnvironment, fail: Fail): void {
  if (st.list === 'task' || st.list === 'user' || st.list === 'filesystem') {
    fail(`syscall auditing cannot be added to the ${st.list} list`, arg);
  }
  if (st.list === 'exclude') fail('syscall auditing cannot be put on the exclude list', arg);
  const machine = st.list === 'io_uring' ? 'io_uring' : st.elf === undefined ? env.machine : machineOfElf(st.elf);
  if (machine === undefined) return fail('unsupported arch for syscall names', arg);
  const table = machine === 'io_uring' ? URING_TABLE : SYSCALLS[machine];
  let offset = 0;
  for (const name of arg.text.split(',')) {
    const at: Token = { text: name, start: arg.start + offset };
    offset += name.length + 1;
    if (name === 'all') {
      st.mask.fill(0xffffffff);
      continue;
    }
    let nr = table.byName.get(name);
    if (nr === undefined && /^\d/.test(name)) nr = parseCInteger(name);
    if (nr === undefined || nr < 0) return fail(`syscall name unknown on ${machine}`, at);
    if (nr >= BITMASK_WORDS * 32) return fail('syscall number out of range', at);
    st.mask[nr >>> 5] = ((st.mask[nr >>> 5] as number) | (1 << (nr & 31))) >>> 0;
  }
  st.syscallAdded = true;
}

function machineOfElf(elf: number): Machine | undefined {
  if (elf === AUDIT_ARCH_X86_64) return 'x86_64';
  if (elf === AUDIT_ARCH_I386) return 'i386';
  return undefined;
}

function parseArch(text: string, env: RuleEnvironment): number | undefined {
  const t = text.toLowerCase();
  if (/^\d/.test(t)) {
    const n = parseCInteger(t);
    return n !== undefined && machineOfElf(n >>> 0) ? n >>> 0 : undefined;
  }
  if (t === 'b64') return env.machine === 'x86_64' ? AUDIT_ARCH_X86_64 : undefined;
  if (t === 'b32') return AUDIT_ARCH_I386;
  if (t === 'x86_64') return AUDIT_ARCH_X86_64;
  if (t === 'i386' || t === 'i486' || t === 'i586' || t === 'i686') return AUDIT_ARCH_I386;
  return undefined;
}

function splitPair(text: string): { name: string; op: RuleOperator; value: string } | undefined {
  for (const op of OP_SEARCH_ORDER) {
    const at = text.indexOf(op);
    if (at >= 0) return { name: text.slice(0, at), op, value: text.slice(at + op.length) };
  }
  return undefined;
}

/** Exclude-list fields the kernel accepts (AUDIT_FEATURE_BITMAP_EXCLUDE_EXTEND). */
const EXCLUDE_FIELDS: ReadonlySet<string> = new Set(['pid', 'uid', 'gid', 'auid', 'loginuid', 'msgtype', 'exe', 'subj_user', 'subj_role', 'subj_type', 'subj_sen', 'subj_clr']);

function parseFieldPair(st: ParseState, arg: Token, env: RuleEnvironment, fail: Fail): void {
  const list = st.list as RuleList;
  if (st.fields.length >= MAX_FIELDS - 1) fail('too many fields in rule', arg);
  const pair = splitPair(arg.text);
  if (!pair) return fail('field needs an operator (=, !=, <, >, <=, >=, &, &=)', arg);
  if (pair.name === '') fail('field name is missing', arg);
  if (pair.value === '') fail('field value is missing', arg);
  const def = FIELD_BY_NAME.get(pair.name);
  if (!def) return fail(`unknown field "${pair.name}"`, arg);
  if (list === 'exclude' && !EXCLUDE_FIELDS.has(def.name)) fail(`field ${def.name} cannot be used on the exclude list`, arg);
  if (def.exitOnly && list !== 'exit' && list !== 'io_uring') fail(`field ${def.name} is only valid on the exit list`, arg);
  const valueTok: Token = { text: pair.value, start: arg.start + arg.text.length - pair.value.length };
  const value = parseFieldValue(st, def, pair.op, valueTok, env, fail);
  // Canonical name: `loginuid` is sent (and printed) as auid.
  const name = (FIELD_BY_ID.get(def.id) as FieldDef).name;
  st.fields.push({ name, op: pair.op, value });
}

/** -C f1=f2 / f1!=f2: an inter-field comparison (audit_rule_interfield_comp_data). */
function parseCompare(st: ParseState, arg: Token, fail: Fail): void {
  if (st.fields.length >= MAX_FIELDS - 1) fail('too many fields in rule', arg);
  const at = arg.text.indexOf('!=');
  const op: RuleOperator = at >= 0 ? '!=' : '=';
  const split = at >= 0 ? at : arg.text.indexOf('=');
  if (split < 0) return fail('comparison needs = or !=', arg);
  const canonical = (n: string): string | undefined => {
    const def = FIELD_BY_NAME.get(n);
    return def && FIELD_BY_ID.get(def.id)?.name;
  };
  const left = canonical(arg.text.slice(0, split));
  const right = canonical(arg.text.slice(split + op.length));
  const id = left && right ? COMPARE_BY_PAIR.get(`${left} ${right}`) : undefined;
  if (id === undefined) return fail('unsupported field comparison', arg);
  if (st.list !== 'exit') fail('field comparison is only valid on the exit list', arg);
  st.fields.push({ name: 'field_compare', op, value: id });
}

function parseFieldValue(st: ParseState, def: FieldDef, op: RuleOperator, tok: Token, env: RuleEnvironment, fail: Fail): number | string {
  const v = tok.text;
  const list = st.list as RuleList;
  const num = (n: number | undefined): number => {
    const u = n === undefined ? undefined : toU32(n);
    if (u === undefined) return fail(`${def.name} needs a number`, tok);
    return u;
  };
  const signedOk = /^\d/.test(v) || /^-\d/.test(v);
  switch (def.kind) {
    case 'uid': {
      if (signedOk) return num(parseCInteger(v));
      if (v === 'unset') return 0xffffffff;
      const uid = env.userId(v);
      if (uid === undefined) return fail('unknown user', tok);
      return uid >>> 0;
    }
    case 'gid': {
      if (/^\d/.test(v)) return num(parseCInteger(v));
      const gid = env.groupId(v);
      if (gid === undefined) return fail('unknown group', tok);
      return gid >>> 0;
    }
    case 'exit': {
      if (signedOk) return num(parseCInteger(v));
      const negative = v.startsWith('-');
      const nr = ERRNO_BY_NAME.get(negative ? v.slice(1) : v);
      if (nr === undefined) return fail('unknown errno name', tok);
      return (negative ? -nr : nr) >>> 0;
    }
    case 'msgtype': {
      if (list !== 'user' && list !== 'exclude') fail('msgtype is only valid on the user and exclude lists', tok);
      if (/^\d/.test(v)) return num(parseCInteger(v));
      const t = MSG_TYPE_BY_NAME.get(v);
      if (t === undefined) return fail('unknown message type', tok);
      return t;
    }
    case 'string': {
      if (def.id === AUDIT_WATCH || def.id === AUDIT_DIR) st.permAdded = true;
      if (def.name === 'exe') {
        if (op !== '=') fail('exe supports only =', tok);
        st.exeAdded = true;
      }
      if (Buffer.byteLength(v) > PATH_MAX) fail('value is too long', tok);
      return v;
    }
    case 'arch': {
      if (list === 'io_uring') fail('arch is not valid on the io_uring list (op numbers do not depend on it)', tok);
      if (st.syscallAdded) fail('-F arch must be given before -S', tok);
      if (op !== '=' && op !== '!=') fail('arch supports only = and !=', tok);
      const elf = parseArch(v, env);
      if (elf === undefined) return fail('unsupported arch (b64, b32, x86_64, i386)', tok);
      st.elf = elf;
      return elf;
    }
    case 'perm': {
      if (op !== '=') fail('perm supports only =', tok);
      const p = parsePerm(v);
      if (p === undefined) return fail('permissions must be 1 to 4 of r, w, x, a', tok);
      st.permAdded = true;
      return p;
    }
    case 'filetype': {
      const t = FILE_TYPES.get(v);
      if (t === undefined) return fail('unknown file type (file, dir, socket, link, character, block, fifo)', tok);
      return t;
    }
    case 'arg':
      if (!signedOk) fail(`${def.name} needs a number`, tok);
      return num(parseCInteger(v));
    case 'sessionid':
      if (list !== 'exclude' && list !== 'user' && list !== 'exit') fail('sessionid is not valid on this list', tok);
      if (v === 'unset') return 0xffffffff;
      if (!signedOk) fail('sessionid needs a number or unset', tok);
      return num(parseCInteger(v));
    case 'compare':
      return fail('write field comparisons with -C', tok);
    case 'number':
      if (def.name === 'inode' && op !== '=' && op !== '!=') fail('inode supports only = and !=', tok);
      if (!/^\d/.test(v)) fail(`${def.name} needs a number`, tok);
      return num(parseCInteger(v));
  }
}

/** auditctl's own test for "all": every word but the last (whose top bits the kernel clears) is full. */
function isAllSyscalls(mask: Uint32Array): boolean {
  for (let w = 0; w < BITMASK_WORDS - 1; w++) if (mask[w] !== 0xffffffff) return false;
  return true;
}

function maskToSyscalls(mask: Uint32Array): number[] {
  const out: number[] = [];
  for (let w = 0; w < BITMASK_WORDS; w++) {
    const word = mask[w] as number;
    if (word === 0) continue;
    for (let b = 0; b < 32; b++) if (word & (1 << b)) out.push(w * 32 + b);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Encoding

function fieldId(name: string): number {
  const def = FIELD_BY_NAME.get(name);
  if (def) return def.id;
  const m = /^f(\d+)$/.exec(name);
  if (m) return Number(m[1]);
  throw new TypeError(`unknown rule field name: ${name}`);
}

/** The AUDIT_ADD_RULE / AUDIT_DEL_RULE payload auditctl would send for this rule (no netlink padding). */
export function encodeRule(specOrText: RuleSpec | string): Buffer {
  const spec = typeof specOrText === 'string' ? parseRuleText(specOrText) : specOrText;
  if (spec.fields.length > MAX_FIELDS) throw new RangeError(`a rule holds at most ${MAX_FIELDS} fields`);
  const strings: Buffer[] = [];
  let buflen = 0;
  const ids = spec.fields.map((f) => fieldId(f.name));
  ids.forEach((id, i) => {
    const f = spec.fields[i] as RuleField;
    if (isStringField(id)) {
      if (typeof f.value !== 'string') throw new TypeError(`field ${f.name} needs a string value`);
      const b = Buffer.from(f.value, 'utf8');
      strings.push(b);
      buflen += b.length;
    } else if (typeof f.value !== 'number' || toU32(f.value) === undefined) {
      throw new TypeError(`field ${f.name} needs a 32-bit number`);
    }
  });
  const out = Buffer.alloc(AUDIT_RULE_HEADER_SIZE + buflen);
  const listId = LIST_IDS[spec.list];
  if (listId === undefined) throw new TypeError(`unknown list ${String(spec.list)}`);
  const actionId = ACTION_IDS[spec.action];
  if (actionId === undefined) throw new TypeError(`unknown action ${String(spec.action)}`);
  out.writeUInt32LE((listId | (spec.prepend ? AUDIT_FILTER_PREPEND : 0)) >>> 0, OFF_FLAGS);
  out.writeUInt32LE(actionId, OFF_ACTION);
  out.writeUInt32LE(spec.fields.length, OFF_FIELD_COUNT);
  if (spec.syscalls === 'all') {
    for (let w = 0; w < BITMASK_WORDS; w++) out.writeUInt32LE(0xffffffff, OFF_MASK + w * 4);
  } else {
    for (const nr of spec.syscalls) {
      if (!Number.isInteger(nr) || nr < 0 || nr >= BITMASK_WORDS * 32) throw new RangeError(`syscall number ${nr} out of range`);
      const at = OFF_MASK + (nr >>> 5) * 4;
      out.writeUInt32LE((out.readUInt32LE(at) | (1 << (nr & 31))) >>> 0, at);
    }
  }
  let s = 0;
  ids.forEach((id, i) => {
    const f = spec.fields[i] as RuleField;
    const op = OP_IDS[f.op];
    if (op === undefined) throw new TypeError(`unknown operator ${String(f.op)}`);
    out.writeUInt32LE(id, OFF_FIELDS + i * 4);
    out.writeUInt32LE(op, OFF_FIELDFLAGS + i * 4);
    out.writeUInt32LE(isStringField(id) ? (strings[s++] as Buffer).length : (f.value as number) >>> 0, OFF_VALUES + i * 4);
  });
  out.writeUInt32LE(buflen, OFF_BUFLEN);
  Buffer.concat(strings).copy(out, AUDIT_RULE_HEADER_SIZE);
  return out;
}

/**
 * The payload as the kernel lists it back after adding it (checked on 6.18 in
 * test/integration/rules): the kernel clears the 16 syscall-class marker bits at the top of the mask
 * (auditctl sets them with `-S all` and every watch) after expanding them, which with `all` changes
 * nothing else, and it does not report AUDIT_FILTER_PREPEND (`-A`). Everything else comes back as sent.
 */
export function toKernelForm(payload: Buffer): Buffer {
  const out = Buffer.from(payload);
  if (out.length < AUDIT_RULE_HEADER_SIZE) return out;
  out.writeUInt32LE((out.readUInt32LE(OFF_FLAGS) & ~AUDIT_FILTER_PREPEND) >>> 0, OFF_FLAGS);
  const at = OFF_MASK + 63 * 4;
  out.writeUInt32LE((out.readUInt32LE(at) & ~CLASS_MARKER_BITS_WORD63) >>> 0, at);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

interface RawField {
  readonly id: number;
  readonly op: number;
  readonly value: number;
  readonly text: string | undefined;
}

function readRaw(buf: Buffer): { flags: number; action: number; mask: Uint32Array; fields: RawField[] } {
  if (buf.length < AUDIT_RULE_HEADER_SIZE) throw new RuleDecodeError(`rule payload is ${buf.length} bytes, shorter than ${AUDIT_RULE_HEADER_SIZE}`);
  const count = buf.readUInt32LE(OFF_FIELD_COUNT);
  if (count > MAX_FIELDS) throw new RuleDecodeError(`rule claims ${count} fields (max ${MAX_FIELDS})`);
  const buflen = buf.readUInt32LE(OFF_BUFLEN);
  if (AUDIT_RULE_HEADER_SIZE + buflen > buf.length) throw new RuleDecodeError(`rule buflen ${buflen} runs past the payload (${buf.length} bytes)`);
  const mask = new Uint32Array(BITMASK_WORDS);
  for (let w = 0; w < BITMASK_WORDS; w++) mask[w] = buf.readUInt32LE(OFF_MASK + w * 4);
  const fields: RawField[] = [];
  let off = 0;
  for (let i = 0; i < count; i++) {
    const id = buf.readUInt32LE(OFF_FIELDS + i * 4);
    const value = buf.readUInt32LE(OFF_VALUES + i * 4);
    const op = buf.readUInt32LE(OFF_FIELDFLAGS + i * 4);
    let text: string | undefined;
    if (isStringField(id)) {
      if (off + value > buflen) throw new RuleDecodeError(`string of field ${i} runs past buflen`);
      text = buf.toString('utf8', AUDIT_RULE_HEADER_SIZE + off, AUDIT_RULE_HEADER_SIZE + off + value);
      off += value;
    }
    fields.push({ id, op, value, text });
  }
  return { flags: buf.readUInt32LE(OFF_FLAGS), action: buf.readUInt32LE(OFF_ACTION), mask, fields };
}

/** Reads an audit_rule_data payload (ours, or one the kernel lists back) into a RuleSpec. */
export function decodeRule(buf: Buffer): RuleSpec {
  const raw = readRaw(buf);
  const list = LIST_BY_ID.get(raw.flags & AUDIT_FILTER_MASK);
  if (list === undefined || (raw.flags & ~(AUDIT_FILTER_MASK | AUDIT_FILTER_PREPEND)) !== 0) {
    throw new RuleDecodeError(`unsupported rule flags 0x${raw.flags.toString(16)}`);
  }
  const action: RuleAction | undefined = raw.action === 0 ? 'never' : raw.action === 2 ? 'always' : undefined;
  if (action === undefined) throw new RuleDecodeError(`unsupported rule action ${raw.action}`);
  const fields = raw.fields.map((f): RuleField => {
    const op = OP_BY_ID.get(f.op);
    if (op === undefined) throw new RuleDecodeError(`unsupported operator 0x${f.op.toString(16)}`);
    const name = FIELD_BY_ID.get(f.id)?.name ?? `f${f.id}`;
    return { name, op, value: f.text ?? f.value };
  });
  const all = isAllSyscalls(raw.mask);
  return {
    list,
    action,
    prepend: (raw.flags & AUDIT_FILTER_PREPEND) !== 0,
    syscalls: all ? 'all' : maskToSyscalls(raw.mask),
    fields,
  };
}

/** The rule's keys (auditctl joins several with \x01); empty when it has none. Never throws on junk. */
export function ruleKey(buf: Buffer): string[] {
  let raw: ReturnType<typeof readRaw>;
  try {
    raw = readRaw(buf);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const f of raw.fields) if (f.id === AUDIT_FILTERKEY && f.text !== undefined) out.push(...f.text.split(KEY_SEPARATOR));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Formatting as `auditctl -l` prints

function isWatch(spec: RuleSpec): boolean {
  let perm = false;
  for (const f of spec.fields) {
    if (f.name === 'perm') perm = true;
    else if (f.name !== 'key' && f.name !== 'dir' && f.name !== 'path') return false;
  }
  if (spec.list === 'user' || spec.list === 'task' || spec.list === 'exclude') return perm;
  return perm && spec.syscalls === 'all';
}

function archName(elf: number, machine: Machine): string {
  if (elf === AUDIT_ARCH_X86_64) return machine === 'x86_64' ? 'b64' : 'x86_64';
  if (elf === AUDIT_ARCH_I386) return machine === 'x86_64' ? 'b32' : 'i386';
  return `0x${elf.toString(16).toUpperCase()}`;
}

function permLetters(v: number): string {
  return PERM_BITS.filter(([, bit]) => v & bit)
    .map(([l]) => l)
    .join('');
}

function formatValue(f: RuleField): string {
  if (typeof f.value === 'string') return f.value;
  const v = f.value >>> 0;
  const signed = v | 0;
  const kind = FIELD_BY_NAME.get(f.name)?.kind;
  switch (kind) {
    case 'msgtype':
      return MSG_TYPE_NAMES.get(v) ?? String(signed);
    case 'perm':
      return permLetters(v);
    case 'arg':
      return `0x${v.toString(16).toUpperCase()}`;
    case 'exit': {
      // auditctl 3.0.9 names negative results only (`-EACCES`); a positive exit prints as a number.
      const name = signed < 0 ? ERRNO_NAMES.get(-signed) : undefined;
      return name === undefined ? String(signed) : `-${name}`;
    }
    default:
      return f.name === 'inode' ? String(v) : String(signed);
  }
}

/** The line `auditctl -l` prints for this rule (on a machine of the given kind). */
export function formatRule(spec: RuleSpec, machine: Machine = machineOfThisProcess()): string {
  const watch = isWatch(spec);
  let out = '';
  let syscallMachine: Machine | undefined = machine;
  if (!watch) {
    out += `-a ${spec.action},${spec.list}`;
    for (const f of spec.fields) {
      if (f.name !== 'arch' || typeof f.value !== 'number') continue;
      out += ` -F arch${f.op}${archName(f.value >>> 0, machine)}`;
      syscallMachine = machineOfElf(f.value >>> 0);
    }
    if (spec.list !== 'user' && spec.list !== 'task' && spec.list !== 'exclude') {
      if (spec.syscalls === 'all') out += ' -S all';
      else {
        const names = spec.list === 'io_uring' ? URING_OP_NAMES : syscallMachine ? SYSCALLS[syscallMachine].names : undefined;
        if (spec.syscalls.length > 0) out += ` -S ${spec.syscalls.map((nr) => names?.get(nr) ?? String(nr)).join(',')}`;
      }
    }
  }
  for (const f of spec.fields) {
    if (f.name === 'arch') continue;
    if (f.name === 'path' && watch) out += `-w ${formatValue(f)}`;
    // auditctl 3.0.9 prints a directory watch without the trailing slash newer versions add.
    else if (f.name === 'dir' && watch) out += `-w ${formatValue(f)}`;
    else if (f.name === 'perm' && watch) out += ` -p ${formatValue(f)}`;
    else if (f.name === 'field_compare' && typeof f.value === 'number' && COMPARE_PAIRS.has(f.value)) {
      const [a, b] = COMPARE_PAIRS.get(f.value) as readonly [string, string];
      out += ` -C ${a}${f.op}${b}`;
    } else if (f.name === 'key') {
      for (const k of String(f.value).split(KEY_SEPARATOR)) out += watch ? ` -k ${k}` : ` -F key=${k}`;
    } else out += ` -F ${f.name}${f.op}${formatValue(f)}`;
  }
  return out;
}
