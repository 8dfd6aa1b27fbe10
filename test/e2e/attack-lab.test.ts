/**
 * The attack lab, end to end: the real agent (`credwatch run`, default configuration) on the real
 * kernel, real dockerd and containers, real kubectl/docker/curl/etcdctl, judged only by what
 * `credwatch findings --json` prints. Each scenario runs the technique, then polls the findings
 * for the expected rule, severity, process, container and pod, and checks that no secret leaked.
 *
 * Needs root and the kernel audit subsystem; run by hand under the lab lock:
 *   flock /tmp/credwatch-lab.lock npx vitest run test/e2e
 * (inside `npm test` files run one at a time, so no lock is taken here). Skips with a printed reason
 * where the lab cannot run. Everything is torn down in afterAll, even after a failure.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasRule, type Finding, type Severity } from '../../src/model/finding';
import { SA_DIR_IN_POD, type Pod } from '../helpers/pod-layout';
import { kernelSnapshot, labSkipReason, setUpLab, KUBELET_COPY, type KernelSnapshot, type Lab } from './lab/attack-lab';
import { run, runOk, type CommandResult } from './lab/commands';
import { startDaemon, type RunningDaemon } from './lab/daemon';
import { tearDownLab } from './lab/teardown';
import { atLeast, describeFindings, readFindings, stateKey, storedTimes, triggerTimeMs, waitForNewFindings } from './lab/findings';

const reason = labSkipReason();
if (reason) console.warn(`[skip] e2e attack lab: ${reason}`);

const FINDING_TIMEOUT_MS = 15_000;
const BENIGN_SETTLE_MS = 5_000;

interface LatencyRow {
  scenario: string;
  rule: string;
  severity: Severity;
  eventMs: number;
  storedMs: number;
  /** The finding the scenario asserted on (others are the scenario's further findings). */
  asserted: boolean;
}

describe.skipIf(reason !== null)('e2e: attack lab against the running agent', () => {
  let lab: Lab | null = null;
  let daemon: RunningDaemon | null = null;
  let kernelBefore: KernelSnapshot | null = null;
  const latencies: LatencyRow[] = [];
  /** stateKey (id#revision) of every finding state judged so far: an incident's update is new. */
  const seen = new Set<string>();

  const pod = (): Pod => {
    if (!lab?.pod) throw new Error('the lab pod is not running');
    return lab.pod;
  };
  const db = (): string => {
    if (!daemon) throw new Error('the agent is not running');
    return daemon.dbPath;
  };

  /** Strings that must never appear in what credwatch prints: the token, its hex, a bearer header. */
  function secretsIn(raw: string): string[] {
    const needles = ['Bearer eyJ', 'bearer eyJ'];
    for (const { token } of lab?.pods ?? []) {
      const hex = Buffer.from(token).toString('hex');
      needles.push(token, token.slice(0, 60), token.slice(-60), hex, hex.toUpperCase(), hex.slice(0, 80), hex.slice(0, 80).toUpperCase());
    }
    return needles.filter((n) => raw.includes(n));
  }

  /**
   * Waits for a new finding (one not seen before this scenario) satisfying `match`; checks the
   * whole CLI output for secrets; records the latency of every new finding for the table.
   */
  async function expectFinding(scenario: string, match: (f: Finding) => boolean): Promise<{ hit: Finding; fresh: Finding[] }> {
    const r = await waitForNewFindings(db(), seen, (fresh) => fresh.some(match), FINDING_TIMEOUT_MS);
    const hit = r.fresh.find(match);
    expect(hit, `${scenario}: no matching finding within ${FINDING_TIMEOUT_MS} ms; new findings:\n${describeFindings(r.fresh)}`).toBeDefined();
    expect(secretsIn(r.raw), `${scenario}: secret text in credwatch findings output`).toEqual([]);
    const stored = storedTimes(db(), r.fresh.map((f) => f.id));
    for (const f of r.fresh) {
      seen.add(stateKey(f));
      const storedMs = stored.get(f.id);
      if (storedMs !== undefined) latencies.push({ scenario, rule: f.rule, severity: f.severity, eventMs: triggerTimeMs(f), storedMs, asserted: f === hit });
    }
    return { hit: hit as Finding, fresh: r.fresh };
  }

  const argvIs = (f: Finding, argv: string[]): boolean => JSON.stringify(f.process?.argv) === JSON.stringify(argv);
  const base = (p: string | null | undefined): string => (p ? p.slice(p.lastIndexOf('/') + 1) : '');
  const inPod = (f: Finding): boolean => f.container?.id === pod().containerId && f.container?.pod_uid === pod().podUid;

  beforeAll(async () => {
    kernelBefore = kernelSnapshot();
    lab = await setUpLab();
    // The pod exists before the agent starts, as on a node whose kubelet runs: the lab's stand-in
    // for the kubelet and the runtime (mount, docker run -v /var/lib/kubelet/pods/...) is not
    // part of any scenario, and must not leave credential-read marks that later scenarios join.
    const p = lab.startLabPod();
    daemon = await startDaemon(lab.dir);
    await daemon.waitForLog((l) => l.msg === 'credwatch running', 30_000, 'the agent to report "credwatch running"');
    const watch = daemon.logs.find((l) => l.msg === 'pod token watches updated');
    expect(watch?.added, `the agent did not add a token watch for pod ${p.podUid}`).toBeGreaterThan(0);
    console.log(
      `lab: dockerd ${lab.startedDockerd === null ? 'already running (reused)' : `started by the lab, pid ${lab.startedDockerd}`}; ` +
        `127.0.0.1:2375 served by ${lab.dockerTcp}; agent pid ${daemon.pid}; pod ${p.podUid} container ${p.containerId.slice(0, 12)}`,
    );
    await new Promise((r) => setTimeout(r, 1000));
    for (const f of (await readFindings(daemon.dbPath)).findings) seen.add(stateKey(f));
  }, 180_000); // a fresh CI machine may start dockerd and import the image here

  afterAll(async () => {
    await tearDownLab('e2e lab', { daemon, lab, kernelBefore });
    if (latencies.length > 0) {
      const rows = latencies.map(
        (l) => `${l.asserted ? '*' : ' '} ${l.scenario.padEnd(34)} ${l.rule.padEnd(34)} ${l.severity.padEnd(8)} ${String(l.storedMs - l.eventMs).padStart(6)} ms`,
      );
      const asserted = latencies.filter((l) => l.asserted).map((l) => l.storedMs - l.eventMs).sort((a, b) => a - b);
      const median = asserted[Math.floor(asserted.length / 2)] ?? 0;
      console.log(
        `detection latency, syscall time (audit event id) -> finding committed (findings.stored_ms); * = the finding the scenario asserted on\n` +
          `  ${'scenario'.padEnd(34)} ${'rule'.padEnd(34)} ${'severity'.padEnd(8)} latency\n${rows.join('\n')}\n` +
          `asserted findings: ${asserted.length}, median ${median} ms, max ${asserted[asserted.length - 1] ?? 0} ms`,
      );
    }
  }, 120_000);

  it('benign activity raises no finding: kubectl get pods, docker ps, cat /etc/hostname, a kubelet-like token reader, a build, dpkg -l', async () => {
    const before = new Set(seen);
    const results: [string, CommandResult][] = [];
    results.push(['kubectl get pods', await run('kubectl', ['get', 'pods'], { env: lab!.kubectlEnv })]);
    results.push(['docker ps', await run('docker', ['ps'])]);
    results.push(['cat /etc/hostname', await run('cat', ['/etc/hostname'])]);
    if (lab!.kubeletCopyProblem === null) {
      const r = await run(KUBELET_COPY, [path.join(pod().volumeDir, 'token')]);
      expect(r.stdout).toBe(pod().token);
      results.push(['kubelet reads the token', r]);
    } else {
      console.warn(`[skip part] kubelet-like reader: ${lab!.kubeletCopyProblem}`);
    }
    const src = path.join(lab!.dir, 'hello.c');
    fs.writeFileSync(src, '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n');
    results.push(['gcc', await run('gcc', ['-O2', '-o', path.join(lab!.dir, 'hello'), src], { timeoutMs: 60_000 })]);
    results.push(['dpkg -l', await run('sh', ['-c', 'dpkg -l >/dev/null'])]);
    for (const [what, r] of results) expect(r.code, `${what}: ${r.stderr}`).toBe(0);
    await new Promise((r) => setTimeout(r, BENIGN_SETTLE_MS));
    const fresh = (await readFindings(db())).findings.filter((f) => !before.has(stateKey(f)));
    for (const f of fresh) seen.add(stateKey(f));
    expect(fresh, `benign activity raised findings:\n${describeFindings(fresh)}`).toEqual([]);
  });

  it('everyday exec stays quiet: plain docker exec / kubectl exec raise nothing at medium or above', async () => {
    const before = new Set(seen);
    const id = pod().containerId;
    const results: [string, CommandResult][] = [];
    results.push(['docker exec cat /etc/hostname', await run('docker', ['exec', id, 'cat', '/etc/hostname'])]);
    results.push(['docker exec ls /', await run('docker', ['exec', id, 'ls', '/'])]);
    results.push(['docker exec -u 0 cat /etc/hostname', await run('docker', ['exec', '-u', '0', id, 'cat', '/etc/hostname'])]);
    for (const [what, r] of results) expect(r.code, `${what}: ${r.stderr}`).toBe(0);
    // The lab's API server is a stand-in without exec streams: kubectl exec fails there, but its exec
    // (the command line the agent judges) is real.
    await run('kubectl', ['exec', 'lab-pod', '--', 'cat', '/etc/hostname'], { env: lab!.kubectlEnv, timeoutMs: 15_000 });
    await run('kubectl', ['exec', '-it', 'lab-pod', '--', 'sh'], { env: lab!.kubectlEnv, timeoutMs: 15_000 });
    await new Promise((r) => setTimeout(r, BENIGN_SETTLE_MS));
    const fresh = (await readFindings(db())).findings.filter((f) => !before.has(stateKey(f)));
    for (const f of fresh) seen.add(stateKey(f));
    if (fresh.length > 0) console.log(`everyday exec: below medium, for the record:\n${describeFindings(fresh)}`);
    expect(fresh.filter((f) => atLeast(f.severity, 'medium')), describeFindings(fresh)).toEqual([]);
  });

  it('1. kubectl get secrets --all-namespaces -> H5', async () => {
    const r = await runOk('kubectl', ['get', 'secrets', '--all-namespaces'], { env: lab!.kubectlEnv });
    expect(r.stdout).toContain('bootstrap-token-abcdef');
    const { hit } = await expectFinding('1 kubectl get secrets -A', (f) => f.covers.includes('H5') && f.process?.pid === r.pid);
    expect(hit.rule).toBe('h5-kubectl-secret-access');
    expect(atLeast(hit.severity, 'high')).toBe(true);
    expect(hit.process?.argv).toEqual(['kubectl', 'get', 'secrets', '--all-namespaces']);
    expect(base(hit.process?.exe)).toBe('kubectl');
    expect(hit.container).toBeNull();
  });

  it('2. kubectl get secrets -n default -> H5', async () => {
    const r = await runOk('kubectl', ['get', 'secrets', '-n', 'default'], { env: lab!.kubectlEnv });
    expect(r.stdout).toContain('db-password');
    const { hit } = await expectFinding('2 kubectl get secrets -n default', (f) => f.covers.includes('H5') && f.process?.pid === r.pid);
    expect(hit.rule).toBe('h5-kubectl-secret-access');
    expect(atLeast(hit.severity, 'high')).toBe(true);
    expect(hit.process?.argv).toEqual(['kubectl', 'get', 'secrets', '-n', 'default']);
  });

  it('3. docker exec <pod> cat <token> -> one incident with all its rules (H8, H2 for the CLI; H2, H1 in the pod), container id and pod uid', async () => {
    const tokenPath = `${SA_DIR_IN_POD}/token`;
    const r = await runOk('docker', ['exec', pod().containerId, 'cat', tokenPath]);
    expect(r.stdout).toBe(pod().token);
    const rules = ['h8-runtime-cli-harvest', 'h2-sa-token-path-in-argv', 'h1-sa-token-read'];
    const { hit, fresh } = await expectFinding('3 docker exec pod cat token', (f) => rules.every((x) => hasRule(f, x)) && inPod(f));
    expect(atLeast(hit.severity, 'high')).toBe(true);
    // The process shown is the one that opened the token (the cat in the pod), not the CLI that started it.
    expect(hit.process?.argv).toEqual(['cat', tokenPath]);
    expect(hit.incident?.object).toBe(`file:${tokenPath}`);
    // (The runtime stays "unknown": a kubepods cgroup path with a bare id does not name it.)
    // The open itself (H1, through the pod's token watch) is in the evidence, and so is the CLI's exec.
    expect(hit.evidence.some((e) => e.records.some((rec) => rec.type === 'PATH' && rec.text.includes(`name="${tokenPath}"`)))).toBe(true);
    expect(hit.evidence.some((e) => e.records.some((rec) => rec.type === 'SYSCALL' && /comm="docker"/.test(rec.text))), JSON.stringify(hit.evidence.map((e) => e.role))).toBe(true);
    expect(hit.count).toBeGreaterThanOrEqual(3);
    // One finding for the behaviour: nothing else new about this token.
    const about = fresh.filter((f) => f.incident?.object === `file:${tokenPath}` || f.evidence.some((e) => e.records.some((rec) => rec.text.includes(tokenPath))));
    expect(about.map((f) => f.id), describeFindings(about)).toEqual([hit.id]);
  });

  it('4. bash -c "docker ps -q | xargs docker inspect" -> H8 with the chain bash -> xargs -> docker', async () => {
    const r = await runOk('bash', ['-c', 'docker ps -q | xargs docker inspect']);
    expect(r.stdout).toContain(pod().containerId);
    const { hit } = await expectFinding(
      '4 docker ps | xargs docker inspect',
      (f) => f.covers.includes('H8') && f.process?.argv?.[0] === 'docker' && f.process.argv.includes('inspect'),
    );
    expect(hit.rule).toBe('h8-runtime-cli-harvest');
    expect(atLeast(hit.severity, 'medium')).toBe(true);
    expect(hit.indicators).toContain('fed-by-xargs');
    const chain = hit.process?.parents ?? [];
    expect(base(chain[0]?.exe)).toBe('xargs');
    expect(base(chain[1]?.exe)).toBe('bash');
    expect(chain[1]?.pid).toBe(r.pid);
    expect(chain[1]?.argv).toEqual(['bash', '-c', 'docker ps -q | xargs docker inspect']);
  });

  it('5. curl http://127.0.0.1:2375/containers/json -> H9', async (ctx) => {
    if (lab!.dockerTcpProblem) {
      console.warn(`[skip] scenario 5: ${lab!.dockerTcpProblem}`);
      ctx.skip();
    }
    const r = await runOk('curl', ['-s', 'http://127.0.0.1:2375/containers/json']);
    expect(r.stdout).toContain(pod().containerId);
    const { hit } = await expectFinding('5 curl docker tcp 2375', (f) => f.covers.includes('H9') && f.process?.pid === r.pid);
    expect(hit.rule).toBe('h9-docker-remote-api');
    expect(atLeast(hit.severity, 'high')).toBe(true);
    expect(hit.process?.argv).toEqual(['curl', '-s', 'http://127.0.0.1:2375/containers/json']);
    expect(base(hit.process?.exe)).toBe('curl');
  });

  it('6. curl --unix-socket /var/run/docker.sock -> H7', async () => {
    const argv = ['curl', '-s', '--unix-socket', '/var/run/docker.sock', 'http://localhost/containers/json'];
    const r = await runOk(argv[0]!, argv.slice(1));
    expect(r.stdout).toContain(pod().containerId);
    const { hit, fresh } = await expectFinding('6 curl --unix-socket docker.sock', (f) => f.covers.includes('H7') && f.process?.pid === r.pid);
    expect(hit.rule).toMatch(/^h7-runtime-socket-/);
    expect(atLeast(hit.severity, 'high')).toBe(true);
    expect(hit.process?.argv).toEqual(argv);
    // The connect() to the socket itself is seen, not only the command line.
    expect(fresh.some((f) => hasRule(f, 'h7-runtime-socket-connect') && f.process?.pid === r.pid), describeFindings(fresh)).toBe(true);
  });

  it('7. a script in the pod reads the token without naming it in argv (sh /s.sh) -> H1 with container id and pod uid', async () => {
    const script = path.join(lab!.dir, 's.sh');
    // The path is split so that not even the script's text holds it whole.
    fs.writeFileSync(script, 'f=/run/secrets/kubernetes.io/serviceaccount/to\nf="${f}ken"\nread t < "$f"\necho ${#t}\n');
    await runOk('docker', ['cp', script, `${pod().containerId}:/s.sh`]);
    const r = await run('docker', ['exec', pod().containerId, 'sh', '/s.sh']);
    expect(r.stdout.trim()).toBe(String(pod().token.length));
    // Same container, same token, minutes after scenario 3: the same behaviour, so its incident is updated
    // (a new revision) with this read in its evidence, rather than a second finding.
    const readBySh = (f: Finding): boolean =>
      f.evidence.some(
        (e) => e.records.some((rec) => rec.type === 'SYSCALL' && /comm="sh"/.test(rec.text)) && e.records.some((rec) => rec.type === 'PATH' && rec.text.includes(`name="${SA_DIR_IN_POD}/token"`)),
      );
    const { hit } = await expectFinding('7 sh /s.sh reads token', (f) => hasRule(f, 'h1-sa-token-read') && inPod(f) && readBySh(f));
    expect(hit.covers).toContain('H1');
    expect(atLeast(hit.severity, 'high')).toBe(true);
  });

  it('8. token read on the node, then curl with it as bearer to the API secrets URL -> H6 and one sequence linking both', async () => {
    const tokenFile = path.join(pod().volumeDir, 'token');
    const url = `https://127.0.0.1:${lab!.apiServer.port}/api/v1/namespaces/default/secrets`;
    const r = await runOk('sh', ['-c', `T=$(cat ${tokenFile}); curl -sk -H "Authorization: Bearer $T" ${url}`]);
    expect(r.stdout).toContain('SecretList');
    expect(lab!.apiServer.requests.some((q) => q.authorization === `Bearer ${pod().token}`)).toBe(true);
    const isSeq = (f: Finding): boolean => f.rule === 'seq-credential-read-then-use';
    const { hit: seq, fresh } = await expectFinding('8 token read -> curl bearer', isSeq);
    // H6 on the same curl is part of the sequence's incident (same tree, same endpoint).
    const h6 = fresh.find((f) => hasRule(f, 'h6-api-request-from-tool') && base(f.process?.exe) === 'curl');
    expect(h6, describeFindings(fresh)).toBeDefined();
    expect(h6?.covers).toContain('H6');
    expect(atLeast(h6!.severity, 'high')).toBe(true);
    // The sequence carries both events: the read (cat of the token) and the use (curl).
    expect(atLeast(seq.severity, 'high')).toBe(true);
    expect(seq.evidence.length).toBeGreaterThanOrEqual(2);
    const first = seq.evidence.filter((e) => /:first:/.test(e.role));
    const then = seq.evidence.filter((e) => /:then$/.test(e.role));
    expect(first.some((e) => e.records.some((rec) => rec.type === 'SYSCALL' && /comm="cat"/.test(rec.text))), JSON.stringify(seq.evidence.map((e) => e.role))).toBe(true);
    expect(then).toHaveLength(1);
    expect(then[0]?.records.some((rec) => rec.type === 'SYSCALL' && /comm="curl"/.test(rec.text))).toBe(true);
    expect(base(seq.process?.exe)).toBe('curl');
  });

  it('9. curl https://127.0.0.1:10250/pods -> H10', async () => {
    const argv = ['curl', '-sk', `https://127.0.0.1:${lab!.kubelet.port}/pods`];
    const r = await runOk(argv[0]!, argv.slice(1));
    expect(r.stdout).toContain('PodList');
    const { hit } = await expectFinding('9 curl kubelet /pods', (f) => f.covers.includes('H10') && f.process?.pid === r.pid);
    expect(hit.rule).toBe('h10-kubelet-api-access');
    expect(atLeast(hit.severity, 'high')).toBe(true);
    expect(hit.process?.argv).toEqual(argv);
  });

  it('10. etcdctl get /registry/secrets --prefix -> H11', async () => {
    const argv = ['etcdctl', '--endpoints=http://127.0.0.1:2379', '--dial-timeout=1s', '--command-timeout=2s', 'get', '/registry/secrets', '--prefix'];
    // Nothing listens on 2379: the exec and the connect attempt are the telemetry; etcdctl fails.
    const r = await run(argv[0]!, argv.slice(1), { env: { ...process.env, ETCDCTL_API: '3' } });
    expect(r.code).not.toBe(0);
    const { hit } = await expectFinding('10 etcdctl get /registry/secrets', (f) => f.covers.includes('H11') && f.process?.pid === r.pid);
    expect(hit.rule).toBe('h11-etcd-direct-access');
    expect(atLeast(hit.severity, 'high')).toBe(true);
    expect(hit.process?.argv).toEqual(argv);
  });

  it('11. a pod started while the agent runs gets its token watch, and a token read in it -> H1 with its container id and pod uid', async () => {
    const d = daemon!;
    const watchesBefore = d.logs.filter((l) => l.msg === 'pod token watches updated').length;
    const startedMs = Date.now();
    const p2 = lab!.startLabPod();
    await d.waitForLog(
      (l) => l.msg === 'pod token watches updated' && Number(l.added) > 0 && d.logs.filter((x) => x.msg === 'pod token watches updated').indexOf(l) >= watchesBefore,
      40_000,
      `the token watch for the new pod ${p2.podUid}`,
    );
    console.log(`new pod: token watch added ${Date.now() - startedMs} ms after the pod was started`);
    // The lab's stand-in for the kubelet and the runtime (mount, docker run -v /var/lib/kubelet/...)
    // is not this scenario: what it raised is set aside (and printed) before the token is read.
    await new Promise((r) => setTimeout(r, 1000));
    const setup = (await readFindings(d.dbPath)).findings.filter((f) => !seen.has(stateKey(f)));
    for (const f of setup) seen.add(stateKey(f));
    if (setup.length > 0) console.log(`new pod: the lab's pod set-up (not a scenario) raised:\n${describeFindings(setup)}`);
    // What the kubelet itself does for a new pod (mount the token tmpfs) raises nothing.
    expect(setup.filter((f) => f.process?.argv?.[0] === 'mount' || base(f.process?.exe) === 'kubelet'), describeFindings(setup)).toEqual([]);
    const tokenPath = `${SA_DIR_IN_POD}/token`;
    const r = await runOk('docker', ['exec', p2.containerId, 'cat', tokenPath]);
    expect(r.stdout).toBe(p2.token);
    const { hit } = await expectFinding(
      '11 new pod: docker exec cat token',
      (f) => hasRule(f, 'h1-sa-token-read') && argvIs(f, ['cat', tokenPath]) && f.container?.id === p2.containerId,
    );
    expect(hit.container?.pod_uid).toBe(p2.podUid);
    expect(atLeast(hit.severity, 'high')).toBe(true);
  });

  it('the agent stops on SIGTERM with exit 0 and leaves the kernel audit state exactly as before', async () => {
    const d = daemon!;
    const stopResult = await d.stop();
    expect(stopResult, d.stderr().slice(-2000)).toEqual({ code: 0, signal: null });
    expect(kernelSnapshot()).toEqual(kernelBefore);
    // What it committed is still readable after it stopped, and nothing secret is in it.
    const after = await readFindings(d.dbPath);
    expect(after.findings.length).toBeGreaterThan(0);
    expect(secretsIn(after.raw)).toEqual([]);
  });
});
