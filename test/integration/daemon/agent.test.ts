/**
 * The real daemon (`credwatch run` in a child process) against the real kernel: events flow, a finding
 * lands in the database, SIGTERM puts the kernel back exactly as it was, `status` and /metrics report
 * the same counters, SIGHUP with a broken config keeps the running one, and auto mode next to a live
 * Debian auditd reads in multicast without touching auditd's rules.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { getStatus, listRules } from '../../../src/native/binding';
import { ruleKey } from '../../../src/audit/rules';
import { auditdAvailable, startAuditd } from '../netlink/auditd-lab';
import { cli, freeLoopbackPort, startDaemon, type Daemon } from '../../helpers/daemon';
import { expectKernelAsFound, kernelSkipReason, reportSkip, snapshot, waitFor, type KernelSnapshot } from '../netlink/kernel-lab';

const ROOT = path.resolve(__dirname, '../../..');
const built = existsSync(path.join(ROOT, 'dist/src/cli/main.js'));
const skip = kernelSkipReason() ?? (built ? null : 'dist/ is not built (run the build first)');
reportSkip('credwatch run against the kernel', skip);

function writeConfig(dir: string, port: number, extra = ''): string {
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, `storage:\n  path: ${dir}/state/findings.db\nmetrics:\n  listen: 127.0.0.1:${port}\n${extra}`, { mode: 0o600 });
  return file;
}

async function stopDaemon(d: Daemon): Promise<number | null> {
  return (await d.stop()).code;
}

function findings(db: string): { rule: string; covers: string[]; process: { argv: string[] | null } | null; evidence: { event_id: string }[] }[] {
  const r = cli(['findings', '--json', '--limit', '0', '--db', db]);
  if (r.status !== 0) return [];
  return r.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as ReturnType<typeof findings>[number]);
}

/**
 * A real client connecting to the Docker TCP API port: rule H9 fires on its argv and its connect. Probes
 * that must give findings of their own aim at different loopback addresses: the same actor touching the
 * same endpoint again is the same behaviour, one incident (issue 17), not a new finding.
 */
function dockerApiProbe(marker: string, addr = '127.0.0.1'): void {
  spawnSync('curl', ['-s', '--max-time', '1', `http://${addr}:2375/containers/json?${marker}`], { stdio: 'ignore' });
}

async function waitForFinding(db: string, marker: string): Promise<ReturnType<typeof findings>[number] | null> {
  let hit: ReturnType<typeof findings>[number] | null = null;
  await waitFor(
    () => {
      hit = findings(db).find((f) => (f.process?.argv ?? []).some((a) => a.includes(marker))) ?? null;
      return hit !== null;
    },
    15_000,
    250,
  );
  return hit;
}

function ourRules(): string[] {
  return listRules()
    .filter((r) => ruleKey(r).some((k) => k.startsWith('credwatch')))
    .map((r) => r.toString('hex'));
}

describe.skipIf(skip !== null)('credwatch run against the real kernel', () => {
  let dir: string;
  let before: KernelSnapshot;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'credwatch-agent-'));
    before = snapshot();
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('installs its rules, stores a finding for a real probe, and leaves the kernel exactly as it found it on SIGTERM', async () => {
    const port = await freeLoopbackPort();
    const db = path.join(dir, 'state/findings.db');
    const daemon = await startDaemon(writeConfig(dir, port));
    try {
      expect(getStatus().pid).toBe(daemon.pid);
      expect(ourRules().length).toBeGreaterThan(1);
      const marker = `probe${Date.now()}`;
      dockerApiProbe(marker);
      const hit = await waitForFinding(db, marker);
      expect(hit, daemon.rawLines.join('\n')).not.toBeNull();
      expect(hit!.covers).toContain('H9');
      expect(hit!.evidence.length).toBeGreaterThan(0);
    } finally {
      expect(await stopDaemon(daemon)).toBe(0);
    }
    expectKernelAsFound(before);
  });

  it('reports the same counters in `credwatch status` and on /metrics', async () => {
    const port = await freeLoopbackPort();
    const db = path.join(dir, 'state/findings.db');
    const daemon = await startDaemon(writeConfig(dir, port));
    try {
      const marker = `probe${Date.now()}`;
      dockerApiProbe(marker);
      expect(await waitForFinding(db, marker)).not.toBeNull();
      // The snapshot is published every 2 s; wait for one taken after the finding, then read both.
      await new Promise((r) => setTimeout(r, 2_500));
      const status = JSON.parse(cli(['status', '--json', '--db', db]).stdout) as { snapshot?: { counters: Record<string, number> }; counters?: Record<string, number> };
      const counters = status.snapshot?.counters ?? status.counters ?? {};
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const series = new Map<string, number>();
      for (const line of metrics.split('\n')) {
        const m = /^(credwatch_[^ ]+) ([0-9.e+-]+)$/.exec(line);
        if (m) series.set(m[1]!, Number(m[2]));
      }
      const findingSeries = Object.keys(counters).filter((k) => k.startsWith('credwatch_findings_total'));
      expect(findingSeries.length).toBeGreaterThan(0);
      for (const k of findingSeries) expect(series.get(k), k).toBe(counters[k]);
      // Records keep arriving from the rest of the machine: /metrics, read later, is never behind.
      const recordSeries = Object.keys(counters).filter((k) => k.startsWith('credwatch_records_total'));
      expect(recordSeries.length).toBeGreaterThan(0);
      for (const k of recordSeries) expect(series.get(k) ?? 0, k).toBeGreaterThanOrEqual(counters[k]!);
    } finally {
      expect(await stopDaemon(daemon)).toBe(0);
    }
  });

  it('summarizes boring execs on the reader thread, yet counts every record, event and serial, and still finds the probe', async () => {
    const port = await freeLoopbackPort();
    const db = path.join(dir, 'state/findings.db');
    const daemon = await startDaemon(writeConfig(dir, port));
    const scrape = async (): Promise<Map<string, number>> => {
      const series = new Map<string, number>();
      for (const line of (await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).split('\n')) {
        const m = /^(credwatch_[^ ]+) ([0-9.e+-]+)$/.exec(line);
        if (m) series.set(m[1]!, Number(m[2]));
      }
      return series;
    };
    let stopped: { triage?: { summarized: number; summarizedRecords: number } } | undefined;
    let m0: Map<string, number>;
    let m1: Map<string, number>;
    try {
      m0 = await scrape();
      expect(spawnSync('sh', ['-c', 'for i in $(seq 300); do /bin/true; done']).status).toBe(0);
      const marker = `probe${Date.now()}`;
      dockerApiProbe(marker);
      expect(await waitForFinding(db, marker)).not.toBeNull();
      await new Promise((r) => setTimeout(r, 1_500)); // counters are folded into metrics every second
      m1 = await scrape();
    } finally {
      expect(await stopDaemon(daemon)).toBe(0);
      stopped = daemon.logs.find((l) => l.msg === 'audit reader stopped') as typeof stopped;
    }
    const delta = (k: string): number => (m1.get(k) ?? 0) - (m0.get(k) ?? 0);
    expect(delta('credwatch_triage_events_total{verdict="summarized"}')).toBeGreaterThanOrEqual(300);
    // A note stands for its records and its event: the counters look as if they had come through.
    expect(delta('credwatch_records_total{type="EXECVE"}')).toBeGreaterThanOrEqual(300);
    expect(delta('credwatch_records_total{type="EOE"}')).toBeGreaterThanOrEqual(300);
    expect(delta('credwatch_events_total{type="SYSCALL"}')).toBeGreaterThanOrEqual(300);
    expect(delta('credwatch_stream_signals_total{kind="serial_gap"}')).toBe(0);
    expect(stopped?.triage?.summarized ?? 0).toBeGreaterThanOrEqual(300);
    expect(stopped?.triage?.summarizedRecords ?? 0).toBeGreaterThanOrEqual(300 * 5);
  });

  it('keeps running on the old configuration when SIGHUP brings a broken one, and says why', async () => {
    const port = await freeLoopbackPort();
    const db = path.join(dir, 'state/findings.db');
    const config = writeConfig(dir, port);
    const daemon = await startDaemon(config);
    try {
      writeFileSync(config, 'storage:\n  retention_days: "many"\n  unknown_key: 1\n', { mode: 0o600 });
      process.kill(daemon.pid, 'SIGHUP');
      expect(await waitFor(() => daemon.rawLines.join('\n').includes('reload refused'), 5_000, 50)).toBe(true);
      const refusal = daemon.rawLines.join('\n').split('\n').find((l) => l.includes('reload refused')) ?? '';
      expect(refusal).toMatch(/retention_days/);
      expect(daemon.hasExited()).toBe(false);
      const marker = `probe${Date.now()}`;
      dockerApiProbe(marker);
      expect(await waitForFinding(db, marker)).not.toBeNull();
    } finally {
      expect(await stopDaemon(daemon)).toBe(0);
    }
  });

  it('survives SIGUSR2, SIGALRM and SIGVTALRM (whose default would end it with our rules left in the kernel) and says it ignored each', async () => {
    const port = await freeLoopbackPort();
    const db = path.join(dir, 'state/findings.db');
    const daemon = await startDaemon(writeConfig(dir, port));
    try {
      for (const signal of ['SIGUSR2', 'SIGALRM', 'SIGVTALRM'] as const) {
        process.kill(daemon.pid, signal);
        expect(await waitFor(() => daemon.rawLines.some((l) => l.includes('signal ignored') && l.includes(signal)), 5_000, 50)).toBe(true);
      }
      expect(daemon.hasExited()).toBe(false);
      expect(getStatus().pid).toBe(daemon.pid);
      const marker = `probe${Date.now()}`;
      dockerApiProbe(marker);
      expect(await waitForFinding(db, marker)).not.toBeNull();
    } finally {
      expect(await stopDaemon(daemon)).toBe(0);
    }
    expectKernelAsFound(before);
  });

  it('applies a new allowlist on SIGHUP: the allowlisted program is silenced, others are still found', async () => {
    const port = await freeLoopbackPort();
    const db = path.join(dir, 'state/findings.db');
    const config = writeConfig(dir, port);
    const daemon = await startDaemon(config);
    try {
      const before = `probe${Date.now()}a`;
      dockerApiProbe(before);
      expect(await waitForFinding(db, before)).not.toBeNull();
      const curl = realpathSync(spawnSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).stdout.trim());
      writeConfig(dir, port, `detections:\n  allow:\n    exes: [${curl}]\n`);
      process.kill(daemon.pid, 'SIGHUP');
      expect(await waitFor(() => daemon.rawLines.some((l) => l.includes('configuration reloaded')), 5_000, 50)).toBe(true);
      // Each on an endpoint of its own: were curl not silenced, its probe would be a new incident (not an
      // update of the first probe's), so its absence below means something.
      const silenced = `probe${Date.now()}b`;
      dockerApiProbe(silenced, '127.0.0.2');
      // Another program on the same port, after curl's probe: once its finding is in, curl's would be too.
      const other = `probe${Date.now()}c`;
      spawnSync('python3', ['-c', 'import socket,sys; s=socket.socket(); s.settimeout(1); s.connect_ex(("127.0.0.3", 2375))', other]);
      expect(await waitForFinding(db, other)).not.toBeNull();
      expect(findings(db).some((f) => (f.process?.argv ?? []).some((a) => a.includes(silenced)))).toBe(false);
    } finally {
      expect(await stopDaemon(daemon)).toBe(0);
    }
  });

  it('reloads rules_dir on SIGHUP for the host engine and the Kubernetes detector alike (Sigma rules here)', async () => {
    const port = await freeLoopbackPort();
    const db = path.join(dir, 'state/findings.db');
    const rulesDir = mkdtempSync(path.join(dir, 'rules-'));
    chmodSync(rulesDir, 0o755);
    const kubeLog = path.join(dir, 'kube-audit.log');
    writeFileSync(kubeLog, '', { mode: 0o600 });
    const config = writeConfig(dir, port, `detections:\n  rules_dir: ${rulesDir}\nkube_audit:\n  - path: ${kubeLog}\n`);
    const marker = `sighup${Date.now()}`;
    const kubeLine = (id: string): string =>
      JSON.stringify({ kind: 'Event', apiVersion: 'audit.k8s.io/v1', level: 'Metadata', auditID: id, stage: 'ResponseComplete', requestURI: '/api/v1/namespaces/a/pods/p/exec', verb: 'create', user: { username: `mallory-${marker}` }, sourceIPs: ['10.1.1.1'], objectRef: { resource: 'pods', subresource: 'exec', namespace: 'a', name: 'p' }, responseStatus: { code: 101 }, requestReceivedTimestamp: new Date().toISOString() }) + '\n';
    const sigmaRules = (): { rule: string }[] => findings(db).filter((f) => f.rule.startsWith('sigma-'));
    const daemon = await startDaemon(config);
    try {
      // Before: no rule names the marker.
      spawnSync('/bin/true', [marker, 'before']);
      appendFileSync(kubeLog, kubeLine(`${marker}-1`));
      const probe = `probe${Date.now()}`;
      dockerApiProbe(probe); // a finding that shows the daemon had read past both
      expect(await waitForFinding(db, probe)).not.toBeNull();
      await new Promise((r) => setTimeout(r, 1_500));
      expect(sigmaRules()).toEqual([]);

      const rule = (id: string, logsource: string, detection: string): string =>
        `title: sighup ${id}\nid: ${id}\nauthor: credwatch tests\nlogsource:\n${logsource}\ndetection:\n${detection}\nlevel: high\n`;
      writeFileSync(path.join(rulesDir, 'host.yml'), rule('11111111-0000-4000-8000-000000000001', '  product: linux\n  category: process_creation', `  sel:\n    CommandLine|contains: '${marker} after'\n  condition: sel`), { mode: 0o644 });
      writeFileSync(path.join(rulesDir, 'kube.yml'), rule('11111111-0000-4000-8000-000000000002', '  product: kubernetes\n  service: audit', `  sel:\n    verb: create\n    objectRef.subresource: exec\n    user.username|endswith: '-${marker}'\n  condition: sel`), { mode: 0o644 });
      process.kill(daemon.pid, 'SIGHUP');
      expect(await waitFor(() => daemon.rawLines.some((l) => l.includes('configuration reloaded')), 5_000, 50)).toBe(true);

      spawnSync('/bin/true', [marker, 'after']);
      appendFileSync(kubeLog, kubeLine(`${marker}-2`));
      expect(await waitFor(() => sigmaRules().length >= 2, 15_000, 250), daemon.rawLines.slice(-20).join('\n')).toBe(true);
      expect(sigmaRules().map((f) => f.rule).sort()).toEqual(['sigma-11111111-0000-4000-8000-000000000001', 'sigma-11111111-0000-4000-8000-000000000002']);
      const host = findings(db).find((f) => f.rule === 'sigma-11111111-0000-4000-8000-000000000001');
      expect(host?.process?.argv).toEqual(['/bin/true', marker, 'after']);

      // A broken rule file on the next SIGHUP: refused with file:line, the loaded rules keep running.
      writeFileSync(path.join(rulesDir, 'zz.yml'), rule('11111111-0000-4000-8000-000000000003', '  product: windows', '  sel:\n    Image: x\n  condition: sel'), { mode: 0o644 });
      process.kill(daemon.pid, 'SIGHUP');
      expect(await waitFor(() => daemon.rawLines.some((l) => l.includes('reload refused') && l.includes('zz.yml:5:')), 5_000, 50)).toBe(true);
      spawnSync('/bin/true', [marker, 'after', 'again']);
      expect(await waitFor(() => findings(db).some((f) => f.rule.startsWith('sigma-') && (f.process?.argv ?? []).includes('again')), 15_000, 250)).toBe(true);
    } finally {
      expect(await stopDaemon(daemon)).toBe(0);
    }
    expectKernelAsFound(before);
  });

  it.skipIf(!auditdAvailable())('reads in multicast next to a running auditd, sees the same event, and leaves auditd and its rules alone', async () => {
    const auditd = await startAuditd();
    const foreign = '-a always,exit -F arch=b64 -S execve -k auditdtest';
    const port = await freeLoopbackPort();
    const db = path.join(dir, 'state/findings.db');
    let daemon: Daemon | null = null;
    try {
      expect(spawnSync('auditctl', foreign.split(' ')).status).toBe(0);
      const rulesBefore = listRules().map((r) => r.toString('hex'));
      daemon = await startDaemon(writeConfig(dir, port));
      expect(getStatus().pid).toBe(auditd.pid);
      const marker = `probe${Date.now()}`;
      dockerApiProbe(marker);
      const hit = await waitForFinding(db, marker);
      expect(hit, daemon.rawLines.join('\n')).not.toBeNull();
      const status = JSON.parse(cli(['status', '--json', '--db', db]).stdout) as { snapshot?: { mode: string }; mode?: string };
      expect(status.snapshot?.mode ?? status.mode).toBe('multicast');
      // The event the finding rests on is in auditd's stream too.
      const eventId = hit!.evidence[0]!.event_id;
      expect(await waitFor(() => auditd.output().includes(`audit(${eventId})`), 5_000, 50)).toBe(true);
      expect(await stopDaemon(daemon)).toBe(0);
      daemon = null;
      expect(getStatus().pid).toBe(auditd.pid);
      expect(listRules().map((r) => r.toString('hex'))).toEqual(rulesBefore);
    } finally {
      if (daemon) await stopDaemon(daemon);
      spawnSync('auditctl', ['-d', ...foreign.split(' ').slice(1)]);
      await auditd.stop();
    }
    expectKernelAsFound(before);
  });
});
