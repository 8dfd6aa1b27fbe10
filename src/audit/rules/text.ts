/**
 * auditctl rule text to a RuleSpec: tokenising (quotes, backslash escapes) and parsing as auditctl's
 * setopt() and libaudit's audit_rule_fieldpair_data() do, fields in the order auditctl sends them.
 */
import { posix as posixPath } from 'node:path';
import { ERRNO_ALIASES, ERRNO_NAMES } from '../errno-table';
import {
  AUDIT_DIR,
  AUDIT_WATCH,
  COMPARE_PAIRS,
  FIELD_BY_ID,
  FIELD_BY_NAME,
  FILE_TYPES,
  MSG_TYPE_NAMES,
  PERM_BITS,
  type FieldDef,
} from '../rule-fields';
import { AUDIT_ARCH_I386, AUDIT_ARCH_X86_64 } from '../syscall-names';
import { systemRuleEnvironment } from './environment';
import { RuleSyntaxError, type RuleAction, type RuleEnvironment, type RuleField, type RuleList, type RuleOperator, type RuleSpec } from './types';
import { BITMASK_WORDS, KEY_SEPARATOR, MAX_FIELDS, SYSCALLS, URING_TABLE, isAllSyscalls, machineOfElf, maskToSyscalls, toU32 } from './vocabulary';

const AUDIT_MAX_KEY_LEN = 256;
const PATH_MAX = 4096;
const NAME_MAX = 255;
/** libaudit looks for two-character operators first, then one-character ones, anywhere in `f<op>v`. */
const OP_SEARCH_ORDER: readonly RuleOperator[] = ['!=', '>=', '<=', '&=', '=', '>', '<', '&'];

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
