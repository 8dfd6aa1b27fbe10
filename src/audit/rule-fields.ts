/**
 * The vocabulary of audit rule fields: kernel field ids (linux/audit.h), how auditctl parses and prints
 * each one, which filter lists accept it, and the value name tables (errno names for `exit=`, message
 * type names for `msgtype=`, file type names for `filetype=`).
 *
 * The field table below is written by hand from linux/audit.h and libaudit's fieldtab; the errno
 * and message type names come from tables scripts/gen-audit-tables.js generates from the headers.
 */
import { AUDIT_MESSAGE_TYPES } from './record-type-table';

/** How a field's value is parsed from text and printed back (mirrors libaudit's per-field cases). */
export type FieldKind =
  | 'uid' // number, negative number, `unset`, or a user name
  | 'gid' // number or a group name
  | 'exit' // number, negative number, or an errno name (`-EACCES`)
  | 'msgtype' // number or a message type name
  | 'string' // carried in buf, value = length
  | 'arch' // b64, b32, x86_64, i386, or an AUDIT_ARCH_* number
  | 'perm' // letters r w x a
  | 'filetype' // file, dir, socket, link, character, block, fifo
  | 'arg' // a0..a3: number or negative number, printed in hex
  | 'sessionid' // number, negative number, or `unset`
  | 'compare' // -C a=b / a!=b: value is an AUDIT_COMPARE_* id
  | 'number'; // plain non-negative number (pid, ppid, success, saddr_fam, inode, ...)

export interface FieldDef {
  readonly name: string;
  readonly id: number;
  readonly kind: FieldKind;
  /** Only valid on the exit list (libaudit returns -7/-17 otherwise). */
  readonly exitOnly?: boolean;
}

export const AUDIT_ARCH_FIELD = 11;
export const AUDIT_WATCH = 105;
export const AUDIT_PERM = 106;
export const AUDIT_DIR = 107;
export const AUDIT_EXE = 112;
export const AUDIT_FILTERKEY = 210;

/** In libaudit's fieldtab order; where two names share an id, the first is the one auditctl prints. */
export const FIELD_DEFS: readonly FieldDef[] = [
  { name: 'pid', id: 0, kind: 'number' },
  { name: 'uid', id: 1, kind: 'uid' },
  { name: 'euid', id: 2, kind: 'uid' },
  { name: 'suid', id: 3, kind: 'uid' },
  { name: 'fsuid', id: 4, kind: 'uid' },
  { name: 'gid', id: 5, kind: 'gid' },
  { name: 'egid', id: 6, kind: 'gid' },
  { name: 'sgid', id: 7, kind: 'gid' },
  { name: 'fsgid', id: 8, kind: 'gid' },
  { name: 'auid', id: 9, kind: 'uid' },
  { name: 'loginuid', id: 9, kind: 'uid' },
  { name: 'pers', id: 10, kind: 'number' },
  { name: 'arch', id: AUDIT_ARCH_FIELD, kind: 'arch' },
  { name: 'msgtype', id: 12, kind: 'msgtype' },
  // SELinux/LSM labels: encoded as strings; the kernel rejects them unless an LSM is active.
  { name: 'subj_user', id: 13, kind: 'string' },
  { name: 'subj_role', id: 14, kind: 'string' },
  { name: 'subj_type', id: 15, kind: 'string' },
  { name: 'subj_sen', id: 16, kind: 'string' },
  { name: 'subj_clr', id: 17, kind: 'string' },
  { name: 'ppid', id: 18, kind: 'number', exitOnly: true },
  { name: 'obj_user', id: 19, kind: 'string', exitOnly: true },
  { name: 'obj_role', id: 20, kind: 'string', exitOnly: true },
  { name: 'obj_type', id: 21, kind: 'string', exitOnly: true },
  { name: 'obj_lev_low', id: 22, kind: 'string', exitOnly: true },
  { name: 'obj_lev_high', id: 23, kind: 'string', exitOnly: true },
  { name: 'sessionid', id: 25, kind: 'sessionid' },
  { name: 'devmajor', id: 100, kind: 'number', exitOnly: true },
  { name: 'devminor', id: 101, kind: 'number', exitOnly: true },
  { name: 'inode', id: 102, kind: 'number', exitOnly: true },
  { name: 'exit', id: 103, kind: 'exit', exitOnly: true },
  { name: 'success', id: 104, kind: 'number', exitOnly: true },
  { name: 'path', id: AUDIT_WATCH, kind: 'string', exitOnly: true },
  { name: 'perm', id: AUDIT_PERM, kind: 'perm', exitOnly: true },
  { name: 'dir', id: AUDIT_DIR, kind: 'string', exitOnly: true },
  { name: 'filetype', id: 108, kind: 'filetype', exitOnly: true },
  { name: 'obj_uid', id: 109, kind: 'uid' },
  { name: 'obj_gid', id: 110, kind: 'gid' },
  // Not a -F name in auditctl: written with -C (see COMPARE_PAIRS).
  { name: 'field_compare', id: 111, kind: 'compare', exitOnly: true },
  { name: 'exe', id: AUDIT_EXE, kind: 'string' },
  { name: 'saddr_fam', id: 113, kind: 'number' },
  { name: 'a0', id: 200, kind: 'arg' },
  { name: 'a1', id: 201, kind: 'arg' },
  { name: 'a2', id: 202, kind: 'arg' },
  { name: 'a3', id: 203, kind: 'arg' },
  { name: 'key', id: AUDIT_FILTERKEY, kind: 'string' },
];

export const FIELD_BY_NAME: ReadonlyMap<string, FieldDef> = new Map(FIELD_DEFS.map((d) => [d.name, d]));
export const FIELD_BY_ID: ReadonlyMap<number, FieldDef> = (() => {
  const m = new Map<number, FieldDef>();
  for (const d of FIELD_DEFS) if (!m.has(d.id)) m.set(d.id, d);
  return m;
})();

/** Field ids whose value is a length and whose text lives in buf (as the kernel's audit_krule_to_data). */
export function isStringField(id: number): boolean {
  return (id >= 13 && id <= 17) || (id >= 19 && id <= 23) || id === AUDIT_WATCH || id === AUDIT_DIR || id === AUDIT_EXE || id === AUDIT_FILTERKEY;
}

/** perm letters in the order auditctl prints them, with their AUDIT_PERM_* bits. */
export const PERM_BITS: readonly (readonly [string, number])[] = [
  ['r', 4],
  ['w', 2],
  ['x', 1],
  ['a', 8],
];

/** AUDIT_COMPARE_* ids (linux/audit.h) with the two fields they compare, in the order auditctl prints them. */
export const COMPARE_PAIRS: ReadonlyMap<number, readonly [string, string]> = new Map<number, readonly [string, string]>([
  [1, ['uid', 'obj_uid']],
  [2, ['gid', 'obj_gid']],
  [3, ['euid', 'obj_uid']],
  [4, ['egid', 'obj_gid']],
  [5, ['auid', 'obj_uid']],
  [6, ['suid', 'obj_uid']],
  [7, ['sgid', 'obj_gid']],
  [8, ['fsuid', 'obj_uid']],
  [9, ['fsgid', 'obj_gid']],
  [10, ['uid', 'auid']],
  [11, ['uid', 'euid']],
  [12, ['uid', 'fsuid']],
  [13, ['uid', 'suid']],
  [14, ['auid', 'fsuid']],
  [15, ['auid', 'suid']],
  [16, ['auid', 'euid']],
  [17, ['euid', 'suid']],
  [18, ['euid', 'fsuid']],
  [19, ['suid', 'fsuid']],
  [20, ['gid', 'egid']],
  [21, ['gid', 'fsgid']],
  [22, ['gid', 'sgid']],
  [23, ['egid', 'fsgid']],
  [24, ['egid', 'sgid']],
  [25, ['sgid', 'fsgid']],
]);

/** libaudit's ftypetab: file type names for `filetype=` (values are S_IF* mode bits). */
export const FILE_TYPES: ReadonlyMap<string, number> = new Map([
  ['block', 0o060000],
  ['character', 0o020000],
  ['dir', 0o040000],
  ['fifo', 0o010000],
  ['file', 0o100000],
  ['link', 0o120000],
  ['socket', 0o140000],
]);


/** Audit message type number to name, for `-F msgtype=` on the user and exclude lists (libaudit's spelling, as auditctl prints it). */
export const MSG_TYPE_NAMES: ReadonlyMap<number, string> = new Map<number, string>(
  AUDIT_MESSAGE_TYPES.map(([name, nr]) => [nr, name] as const),
);
