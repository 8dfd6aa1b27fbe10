/**
 * The wire codec of `struct audit_rule_data` (linux/audit.h): the AUDIT_ADD_RULE / AUDIT_DEL_RULE
 * payload built from a RuleSpec and read back, and the few byte-level facts the audit lifecycle
 * needs (prepend flag, the `-F pid=` field). This is the only module that knows the layout.
 *
 * Layout (all u32, host order = little endian on the machines we support):
 *   flags | action | field_count | mask[64] | fields[64] | values[64] | fieldflags[64] | buflen | buf[buflen]
 * String-valued fields (path, dir, exe, key, LSM labels) carry their byte length in values[] and their
 * text, unterminated, concatenated in buf in field order.
 */
import { AUDIT_FILTERKEY, FIELD_BY_ID, FIELD_BY_NAME, isStringField } from '../rule-fields';
import { parseRuleText } from './text';
import { RuleDecodeError, type RuleAction, type RuleField, type RuleList, type RuleOperator, type RuleSpec } from './types';
import { BITMASK_WORDS, KEY_SEPARATOR, MAX_FIELDS, isAllSyscalls, maskToSyscalls, toU32 } from './vocabulary';

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
/** The top 16 mask bits name syscall classes; the kernel expands and clears them (audit_to_entry_common). */
const CLASS_MARKER_BITS_WORD63 = 0xffff0000;
const AUDIT_PID_FIELD = 0;

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

/** The payload with AUDIT_FILTER_PREPEND set (`-A`: insert at the head of the list), as a copy. */
export function withPrepend(payload: Buffer): Buffer {
  const out = Buffer.from(payload);
  if (out.length >= AUDIT_RULE_HEADER_SIZE) out.writeUInt32LE((out.readUInt32LE(OFF_FLAGS) | AUDIT_FILTER_PREPEND) >>> 0, OFF_FLAGS);
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

/** The pid in a rule's `-F pid=N` field, or null. Reads the fixed-size arrays only; never throws on junk. */
export function rulePidField(payload: Buffer): number | null {
  if (payload.length < OFF_FIELDFLAGS) return null;
  const count = Math.min(payload.readUInt32LE(OFF_FIELD_COUNT), MAX_FIELDS);
  for (let i = 0; i < count; i++) {
    if (payload.readUInt32LE(OFF_FIELDS + i * 4) === AUDIT_PID_FIELD) return payload.readUInt32LE(OFF_VALUES + i * 4);
  }
  return null;
}
