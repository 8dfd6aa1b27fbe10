/**
 * Issue 17: `docker|kubectl|crictl|nerdctl exec` is a daily operation. Without a credential signal (a
 * credential path, an env dump, a credential word) it raises nothing at medium or above; with one it does.
 * The full engine with the shipped rules, grouping on, as the daemon runs it.
 */
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../../src/audit/event';
import { createHostStages } from '../../../src/pipeline/host-stages';
import { severityRank, type Finding } from '../../../src/model/finding';
import { latestRevisions } from '../../../src/detect/incidents';
import { interactiveExec } from './interactive-exec';

const T0 = 1_800_000_000_000;
let serial = 5000;
let pid = 7000;

function exec(argv: string[]): AuditEvent {
  serial++;
  pid++;
  return interactiveExec(argv, serial, pid, T0);
}

function findingsFor(argv: string[]): Finding[] {
  const d = createHostStages({ host: 'node-a', users: null });
  // What a receiver keeping the highest revision holds after the event and one tick.
  return latestRevisions([...d.onAuditEvent(exec(argv)), ...d.tick(T0 + 1000)]);
}

const atLeastMedium = (fs: Finding[]): Finding[] => fs.filter((f) => severityRank(f.severity) >= severityRank('medium'));
const CTR = 'af54a767e601';

describe('everyday exec stays quiet', () => {
  it.each([
    ['docker', 'exec', CTR, 'cat', '/etc/hostname'],
    ['docker', 'exec', '-it', CTR, 'sh'],
    ['docker', 'exec', CTR, 'ls', '-la', '/app'],
    ['docker', 'exec', '-u', 'root', CTR, 'head', '/var/log/app.log'],
    ['nerdctl', 'exec', CTR, 'cat', '/etc/os-release'],
    ['podman', 'exec', CTR, 'base64', '/app/logo.png'],
    ['crictl', 'exec', '-it', CTR, 'sh'],
    ['crictl', 'exec', CTR, 'ps', 'aux'],
    ['kubectl', 'exec', '-n', 'default', 'web-0', '--', 'cat', '/etc/hostname'],
    ['kubectl', 'exec', '-it', 'web-0', '--', 'bash'],
  ])('%s %s ... raises nothing at medium or above', (...argv: string[]) => {
    const fs = findingsFor(argv);
    expect(atLeastMedium(fs).map((f) => `${f.rule} ${f.severity}`)).toEqual([]);
  });

  it.each([
    [['docker', 'exec', CTR, 'env'], 'h8-runtime-cli-harvest'],
    [['docker', 'exec', CTR, 'printenv', 'DB_URL'], 'h8-runtime-cli-harvest'],
    [['docker', 'exec', CTR, 'cat', '/proc/1/environ'], 'h8-runtime-cli-harvest'],
    [['nerdctl', 'exec', CTR, 'cat', '/root/.aws/credentials'], 'h8-runtime-cli-harvest'],
    [['crictl', 'exec', CTR, 'env'], 'h8-runtime-cli-harvest'],
    [['kubectl', 'exec', 'web-0', '--', 'env'], 'h8-runtime-cli-harvest'],
    [['docker', 'exec', CTR, 'cat', '/app/secret.txt'], 'h8-runtime-cli-harvest'],
    [['docker', 'exec', CTR, 'cat', '/run/secrets/kubernetes.io/serviceaccount/token'], 'h2-sa-token-path-in-argv'],
    [['kubectl', 'exec', 'web-0', '--', 'cat', '/var/run/secrets/kubernetes.io/serviceaccount/token'], 'h2-sa-token-path-in-argv'],
  ])('%j with a credential signal raises %s at medium or above', (argv, rule) => {
    const all = findingsFor(argv);
    const hits = atLeastMedium(all);
    expect(hits.length, JSON.stringify(all.map((f) => [f.rule, f.severity, f.revision]))).toBe(1);
    expect(hits[0]?.rules).toContain(rule);
  });
});
