/** Builds findings for store and CLI tests. */
import type { Finding, Severity } from '../../../src/model/finding';

export interface FindingSpec {
  id?: string;
  rule?: string;
  severity?: Severity;
  time?: string | number;
  host?: string;
  container?: string | null;
  exe?: string;
  argv?: string[];
  evidence?: number;
}

let counter = 0;

export function makeFinding(spec: FindingSpec = {}): Finding {
  counter++;
  const time = spec.time === undefined ? new Date().toISOString() : typeof spec.time === 'number' ? new Date(spec.time).toISOString() : spec.time;
  const container = spec.container === undefined ? null : spec.container;
  const exe = spec.exe ?? '/usr/bin/curl';
  return {
    id: spec.id ?? `f${String(counter).padStart(6, '0')}-${Math.random().toString(16).slice(2, 10)}`,
    rule: spec.rule ?? 'cw.token-read',
    title: 'Service account token read',
    description: 'A process read a service account token',
    severity: spec.severity ?? 'high',
    score: 70,
    confidence: 'medium',
    covers: ['H1'],
    mitre: ['T1552.007'],
    time,
    host: spec.host ?? 'node-a',
    source: 'audit',
    indicators: ['token-path'],
    process: {
      pid: 4242,
      ppid: 1,
      exe,
      comm: exe.split('/').pop() ?? null,
      argv: spec.argv ?? [exe, '-s', 'https://10.0.0.1/api'],
      cwd: '/',
      uid: 0,
      user: 'root',
      auid: 1000,
      tty: null,
      interactive: false,
      parents: [{ pid: 1, exe: '/bin/sh', argv: ['sh', '-c', 'curl'] }],
    },
    container: container ? { id: container, runtime: 'docker', pod_uid: null } : null,
    kube: null,
    evidence: Array.from({ length: spec.evidence ?? 1 }, (_, i) => ({
      event_id: `1700000000.${100 + i}:${counter * 10 + i}`,
      time,
      role: 'token-path',
      records: [
        { type: 'SYSCALL', text: `arch=c000003e syscall=257 success=yes exit=3 pid=4242 comm="curl" exe="${exe}"` },
        { type: 'PATH', text: 'item=0 name="/var/run/secrets/kubernetes.io/serviceaccount/token"' },
      ],
    })),
  };
}
