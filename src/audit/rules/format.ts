/** A RuleSpec as `auditctl -l` prints it (Debian auditctl 3.0.9's spelling). */
import { ERRNO_NAMES } from '../errno-table';
import { COMPARE_PAIRS, FIELD_BY_NAME, MSG_TYPE_NAMES, PERM_BITS } from '../rule-fields';
import { AUDIT_ARCH_I386, AUDIT_ARCH_X86_64 } from '../syscall-names';
import { URING_OP_NAMES } from '../uring-ops';
import { machineOfThisProcess } from './environment';
import type { Machine, RuleField, RuleSpec } from './types';
import { KEY_SEPARATOR, SYSCALLS, machineOfElf } from './vocabulary';

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
