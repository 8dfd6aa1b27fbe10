/**
 * Rules read a command line's first and last 4 KiB (MAX_MATCH_TEXT), so `kubectl <flags> get secrets
 * <flags>` with 8 KiB of padding on each side hides its verb from every argv rule. The pack answers with
 * h5-client-argv-padded: a cluster/runtime/HTTP client whose command line is longer than the rules read.
 * The full engine with the shipped rules, as the daemon runs it.
 */
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../../src/audit/event';
import { MAX_MATCH_TEXT } from '../../../src/detect/linear-regex';
import { compileMatch } from '../../../src/detect/match';
import { latestRevisions } from '../../../src/detect/incidents';
import type { Finding } from '../../../src/model/finding';
import { createHostStages } from '../../../src/pipeline/host-stages';
import { EventView } from '../../../src/enrich/event-view';
import { ProcessTable } from '../../../src/enrich/process-table';
import { interactiveExec } from './interactive-exec';

const T0 = 1_800_000_000_000;
let serial = 9000;

function exec(argv: string[]): AuditEvent {
  serial++;
  return interactiveExec(argv, serial, serial, T0);
}

function findingsFor(argv: string[]): Finding[] {
  const d = createHostStages({ host: 'node-a', users: null });
  return latestRevisions([...d.onAuditEvent(exec(argv)), ...d.tick(T0 + 1000)]);
}

const rulesFired = (argv: string[]): string[] => findingsFor(argv).map((f) => f.rule).sort();

function makeView(argv: string[]): EventView {
  const ev = exec(argv);
  const table = new ProcessTable();
  table.observe(ev);
  return new EventView(ev, { table });
}

const pad = (n: number): string[] => Array.from({ length: n }, (_, i) => `--v=${i % 10}`);

describe('a client command line padded past what the rules read', () => {
  it('kubectl get secrets padded on both sides: the argv rule cannot see the verb, the padding rule fires', () => {
    const padded = ['kubectl', ...pad(1500), 'get', 'secrets', '-A', ...pad(1500)];
    expect(padded.join(' ').length).toBeGreaterThan(2 * MAX_MATCH_TEXT);
    const fired = rulesFired(padded);
    expect(fired).not.toContain('h5-kubectl-secret-access');
    expect(fired).toContain('h5-client-argv-padded');
  });

  it('the same command unpadded is the kubectl rule, not the padding rule', () => {
    const fired = rulesFired(['kubectl', 'get', 'secrets', '-A']);
    expect(fired).toContain('h5-kubectl-secret-access');
    expect(fired).not.toContain('h5-client-argv-padded');
  });

  it('a long command line of another program (a Java classpath) raises nothing', () => {
    const cp = Array.from({ length: 600 }, (_, i) => `/opt/app/lib/dependency-${i}.jar`).join(':');
    expect(rulesFired(['java', '-cp', cp, 'com.example.Main'])).toEqual([]);
  });

  it('the incident key of a command line is redacted as an argv: `docker login -p X` keeps no X (the joined text kept it)', () => {
    const secret = 'Zq7W8kx3Lm9RtPw2';
    const found = findingsFor(['docker', 'login', '-u', 'ci', '-p', secret, 'registry.local', ...pad(2000)]);
    expect(found.map((f) => f.rule)).toContain('h5-client-argv-padded');
    expect(found[0]!.incident?.object).toMatch(/^cmd:docker login -u ci -p /);
    expect(JSON.stringify(found)).not.toContain(secret.slice(0, 8));
  });

  it('argv_cut holds exactly when the command line is longer than the match bound', () => {
    const test = compileMatch({ event: 'exec', argv_cut: true });
    const at = (len: number) => makeView(['curl', 'x'.repeat(len - 'curl '.length)]);
    expect(test(at(MAX_MATCH_TEXT))).toBe(false);
    expect(test(at(MAX_MATCH_TEXT + 1))).toBe(true);
  });
});
