/**
 * The native reader's triage spec for the agent's current rule pack: the conservative literals, globs
 * and ports compiled by src/detect/triage-spec.ts, plus which syscall numbers are exec and connect on
 * each architecture the audit rules cover. Other architectures' events always take the full path.
 */
import type { Detector } from '../detect/engine';
import { compileTriageSpec } from '../detect/triage-spec';
import type { NativeTriageSpec } from '../native/types';

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;

/** From src/audit/syscalls-x86_64.ts and syscalls-i386.ts (i386 socketcall(2) connects are not triaged). */
const TRIAGE_SYSCALLS: NativeTriageSpec['syscalls'] = [
  { arch: AUDIT_ARCH_X86_64, nr: 59, kind: 'exec' },
  { arch: AUDIT_ARCH_X86_64, nr: 322, kind: 'exec' },
  { arch: AUDIT_ARCH_X86_64, nr: 42, kind: 'connect' },
  { arch: AUDIT_ARCH_I386, nr: 11, kind: 'exec' },
  { arch: AUDIT_ARCH_I386, nr: 358, kind: 'exec' },
  { arch: AUDIT_ARCH_I386, nr: 362, kind: 'connect' },
];

/** Programs the engine itself watches at exec, whatever the rules say (runc/crun exec -> container). */
const ENGINE_PROGRAMS = ['runc', 'crun'];

export interface CompiledNativeTriage {
  spec: NativeTriageSpec;
  /** Why some kinds of events cannot be triaged (every such event takes the full path). */
  reasons: string[];
}

export function nativeTriageFor(detector: Detector): CompiledNativeTriage {
  const { reasons, ...compiled } = compileTriageSpec(detector.rules(), ENGINE_PROGRAMS);
  return { spec: { ...compiled, syscalls: TRIAGE_SYSCALLS }, reasons };
}
