/**
 * The native reader's triage spec for the agent's current rule pack: the conservative literals, globs
 * and ports compiled by src/detect/triage-spec.ts, plus which syscall numbers are exec and connect on
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
const KINDS = new Map<string, 'exec' | 'connect'>([
  ['execve', 'exec'],
  ['execveat', 'exec'],
  ['connect', 'connect'],
]);

/** exec and connect syscall numbers per arch (i386 socketcall(2) connects are not triaged: they pass). */
const TRIAGE_SYSCALLS: NativeTriageSpec['syscalls'] = ARCHES.flatMap(([arch, names]) =>
  [...names].flatMap(([nr, name]) => {
    const kind = KINDS.get(name);
    return kind ? [{ arch, nr, kind }] : [];
  }),
);

/** Replay also triages opens (live, an audited open is usually a hit on a watched credential). */
const REPLAY_SYSCALLS: NativeTriageSpec['syscalls'] = [
  ...TRIAGE_SYSCALLS,
  ...ARCHES.flatMap(([arch, names]) => [...names].flatMap(([nr, name]) => (OPEN_SYSCALLS.has(name) ? [{ arch, nr, kind: 'open' as const }] : []))),
];

/** Programs the engine itself watches at exec, whatever the rules say (runc/crun exec -> container). */
const ENGINE_PROGRAMS = ['runc', 'crun'];

export interface CompiledNativeTriage {
  spec: NativeTriageSpec;
  /** Why some kinds of events cannot be triaged (every such event takes the full path). */
  reasons: string[];
}

export function nativeTriageFor(detector: Detector): CompiledNativeTriage {
  const { reasons, ...compiled } = compileTriageSpec(detector.rules(), ENGINE_PROGRAMS, detector.sigmaRules());
  return { spec: { ...compiled, syscalls: TRIAGE_SYSCALLS }, reasons };
}

/** The spec `credwatch replay` gives its native scanner: the agent's, plus open events. */
export function replayTriageFor(detector: Detector): CompiledNativeTriage {
  const { reasons, ...compiled } = compileTriageSpec(detector.rules(), ENGINE_PROGRAMS, detector.sigmaRules(), { open: true });
  return { spec: { ...compiled, syscalls: REPLAY_SYSCALLS }, reasons };
}
