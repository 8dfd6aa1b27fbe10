/**
 * The native reader's triage spec for the agent's current rule pack: the conservative literals, globs
 * and ports compiled by src/detect/triage-spec.ts, plus which syscall numbers are exec, connect and open on
 * each architecture the audit rules cover. Other architectures' events always take the full path.
 */
import type { Detector } from '../detect/engine';
import { compileTriageSpec } from '../detect/triage-spec';
import type { NativeTriageSpec } from '../native/types';
import { AUDIT_ARCH_I386, AUDIT_ARCH_X86_64 } from '../audit/syscall-names';
import { I386_SYSCALL_NAMES } from '../audit/syscalls-i386';
import { X86_64_SYSCALL_NAMES } from '../audit/syscalls-x86_64';
import { OPEN_SYSCALLS } from '../enrich/event-view';

// The arches the audit rules cover, as the SYSCALL record's arch= field carries them.
const ARCHES: [number, ReadonlyMap<number, string>][] = [
  [AUDIT_ARCH_X86_64, X86_64_SYSCALL_NAMES],
  [AUDIT_ARCH_I386, I386_SYSCALL_NAMES],
];
const KINDS = new Map<string, 'exec' | 'connect' | 'open'>([
  ['execve', 'exec'],
  ['execveat', 'exec'],
  ['connect', 'connect'],
  ...[...OPEN_SYSCALLS].map((name): [string, 'open'] => [name, 'open']),
]);

/**
 * exec, connect and open syscall numbers per arch (i386 socketcall(2) connects are not triaged: they
 * pass). Opens are triaged live too: an audited open is usually a hit on a watched credential, and it
 * passes; but a storm of them (a process re-reading a pod token) then goes up as repeat notes
 * (native/repeat_cache.h) instead of a full event each, which was most of the agent's JavaScript work
 * under bench/live-load.js. An open on no watch key with no rule's path literal becomes a process note.
 */
const TRIAGE_SYSCALLS: NativeTriageSpec['syscalls'] = ARCHES.flatMap(([arch, names]) =>
  [...names].flatMap(([nr, name]) => {
    const kind = KINDS.get(name);
    return kind ? [{ arch, nr, kind }] : [];
  }),
);

/** Programs the engine itself watches at exec, whatever the rules say (runc/crun exec -> container). */
const ENGINE_PROGRAMS = ['runc', 'crun'];

export interface CompiledNativeTriage {
  spec: NativeTriageSpec;
  /** Why some kinds of events cannot be triaged (every such event takes the full path). */
  reasons: string[];
}

/** The spec of the live reader's triage and of `credwatch replay`'s native scanner, for the current rules. */
export function nativeTriageFor(detector: Detector): CompiledNativeTriage {
  const { reasons, ...compiled } = compileTriageSpec(detector.rules(), ENGINE_PROGRAMS, detector.sigmaRules(), { open: true });
  return { spec: { ...compiled, syscalls: TRIAGE_SYSCALLS }, reasons };
}
