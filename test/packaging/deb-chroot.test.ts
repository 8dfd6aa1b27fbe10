/**
 * The .deb on a node that has no Node.js and no compiler: a fresh debootstrap minbase root, used as
 * a chroot. dpkg -i, --version, a replay with findings, the live agent started from the chroot
 * catching `kubectl get secrets` run on the host (kernel audit is global), and dpkg -r stopping it
 * and leaving kernel audit exactly as found; then purge removing the state.
 *
 * Live (kernel audit): run under the lab lock.
 *   flock /tmp/credwatch-lab.lock npx vitest run test/packaging/deb-chroot.test.ts
 * The .deb is built on first use (~2 min) and the debootstrap root cached (~1 min once).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Finding } from '../../src/model/finding';
import { forceKernelBack, kernelSnapshot, labSkipReason, type KernelSnapshot } from '../e2e/lab/attack-lab';
import { startApiServerStub, type StubServer } from '../e2e/lab/api-stubs';
import { runOk } from '../e2e/lab/commands';
import { REPO_ROOT, freeLoopbackPort, waitUntil, type LogLine } from '../helpers/daemon';
import { which } from '../helpers/docker-lab';
import { ensureDeb, packagingSkipReason, PACKAGE_VERSION, unpackRoot } from '../helpers/package-build';
import { makeTestPki, type TestPki } from '../helpers/tls';

const reason = packagingSkipReason() ?? labSkipReason();
if (reason) console.warn(`[skip] .deb in a debootstrap chroot: ${reason}`);

describe.skipIf(reason !== null)('the .deb in a debootstrap chroot with no Node.js and no compiler', () => {
  let root = '';
  let deb = '';
  let procMounted = false;
  let kernelBefore: KernelSnapshot | null = null;
  let agent: ChildProcess | null = null;
  let agentExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null = null;
  const logs: LogLine[] = [];
  let pki: TestPki | null = null;
  let api: StubServer | null = null;

  /** A command inside the chroot (PATH as a root shell there has it). */
  const inRoot = (cmd: string[], timeoutMs = 120_000): { status: number | null; stdout: string; stderr: string } => {
    const r = spawnSync('chroot', [root, ...cmd], {
      encoding: 'utf8',
      timeout: timeoutMs,
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(() => {
    deb = ensureDeb();
    root = unpackRoot();
    kernelBefore = kernelSnapshot();
  }, 900_000);

  afterAll(async () => {
    if (agent && agent.exitCode === null && agent.signalCode === null) {
      agent.kill('SIGTERM');
      await agentExit;
    }
    if (kernelBefore) {
      const forced = forceKernelBack(kernelBefore);
      if (forced.length > 0) console.warn(`chroot test: kernel state had to be restored: ${forced.join('; ')}`);
    }
    await api?.close();
    pki?.cleanup();
    if (procMounted) spawnSync('umount', ['-l', path.join(root, 'proc')]);
    if (root) fs.rmSync(root, { recursive: true, force: true });
  }, 120_000);

  it.skipIf(!which('lintian'))('lintian finds no errors in the package (accepted warnings are overridden with reasons)', () => {
    const r = spawnSync('lintian', ['--tag-display-limit', '0', deb], { encoding: 'utf8', timeout: 300_000 });
    const lines = `${r.stdout}${r.stderr}`.split('\n');
    expect(lines.filter((l) => l.startsWith('E: ')), r.stdout).toEqual([]);
    const warnings = lines.filter((l) => l.startsWith('W: '));
    if (warnings.length > 0) console.log(`lintian warnings:\n${warnings.join('\n')}`);
  }, 300_000);

  it('the root has neither Node.js nor a compiler', () => {
    const r = inRoot(['sh', '-c', 'for t in node nodejs gcc cc g++ c++ make; do command -v $t; done; true']);
    expect(r.stdout.trim()).toBe('');
  });

  it("dpkg -i installs it: conffile 0600, state dir 0700; prints the package size", () => {
    fs.copyFileSync(deb, path.join(root, 'tmp/credwatch.deb'));
    const r = inRoot(['dpkg', '-i', '/tmp/credwatch.deb']);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const installedKb = Number(inRoot(['dpkg-query', '-W', '-f=${Installed-Size}', 'credwatch']).stdout);
    console.log(`package: ${path.basename(deb)} ${(fs.statSync(deb).size / 1e6).toFixed(1)} MB, installed ${(installedKb / 1024).toFixed(0)} MiB`);
    const conf = fs.statSync(path.join(root, 'etc/credwatch/config.yaml'));
    expect(conf.mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(root, 'var/lib/credwatch')).mode & 0o777).toBe(0o700);
    expect(inRoot(['dpkg-query', '-W', '-f=${Conffiles}', 'credwatch']).stdout).toContain('/etc/credwatch/config.yaml');
  });

  it('credwatch --version runs on the packaged runtime', () => {
    const r = inRoot(['credwatch', '--version']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(PACKAGE_VERSION);
    // Still no node on PATH: the launcher used /usr/lib/credwatch/bin/node.
    expect(inRoot(['sh', '-c', 'command -v node || true']).stdout.trim()).toBe('');
  });

  it('replays a recorded fixture into findings (the prebuilt addon and better-sqlite3 load)', () => {
    fs.copyFileSync(path.join(REPO_ROOT, 'test/fixtures/behaviours/kubectl-get-secrets.log'), path.join(root, 'tmp/kubectl.log'));
    const r = inRoot(['credwatch', 'replay', '--json', '/tmp/kubectl.log']);
    expect(r.status, r.stderr).toBe(0);
    const rules = r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as Finding).rule);
    expect(rules).toContain('h5-kubectl-secret-access');
    // The native addon: netlink status needs it and nothing else does.
    const st = inRoot(['/usr/lib/credwatch/bin/node', '-e', 'console.log(JSON.stringify(require("/usr/lib/credwatch/dist/src/native/binding.js").getStatus()))']);
    expect(st.status, st.stderr).toBe(0);
    expect(JSON.parse(st.stdout)).toHaveProperty('enabled');
  });

  it('the live agent started in the chroot catches kubectl get secrets run on the host', async () => {
    expect(spawnSync('mount', ['-t', 'proc', 'proc', path.join(root, 'proc')]).status).toBe(0);
    procMounted = true;
    const port = await freeLoopbackPort();
    fs.writeFileSync(path.join(root, 'tmp/live.yaml'), `storage:\n  path: /var/lib/credwatch/live.db\nmetrics:\n  listen: 127.0.0.1:${port}\n`);
    agent = spawn('timeout', ['120', 'chroot', root, '/usr/bin/credwatch', 'run', '--config', '/tmp/live.yaml'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' },
    });
    const proc = agent;
    agentExit = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    let stderr = '';
    let partial = '';
    proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    proc.stdout?.on('data', (c: Buffer) => {
      partial += c.toString();
      for (let nl = partial.indexOf('\n'); nl >= 0; nl = partial.indexOf('\n')) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        try {
          logs.push(JSON.parse(line) as LogLine);
        } catch {
          logs.push({ msg: `(not JSON) ${line}` });
        }
      }
    });
    await waitUntil(`"credwatch running" (stderr: ${stderr.slice(-500)})`, () => logs.some((l) => l.msg === 'credwatch running') || proc.exitCode !== null, 30_000);
    expect(logs.some((l) => l.msg === 'credwatch running'), `${stderr.slice(-2000)}\n${JSON.stringify(logs.slice(-5))}`).toBe(true);

    pki = makeTestPki();
    api = await startApiServerStub(pki.server);
    const home = fs.mkdtempSync(path.join(root, 'tmp/home-'));
    const kubeconfig = path.join(home, 'kubeconfig');
    fs.writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: lab\n  cluster:\n    server: https://127.0.0.1:${api.port}\n    certificate-authority: ${pki.caFile}\n` +
        `users:\n- name: lab\n  user:\n    token: lab-admin-static-token\ncontexts:\n- name: lab\n  context: {cluster: lab, user: lab}\ncurrent-context: lab\n`,
    );
    // kubectl is the host's (the chroot has none): the agent sees it because kernel audit is global.
    const k = await runOk('kubectl', ['get', 'secrets', '-n', 'default'], { env: { ...process.env, KUBECONFIG: kubeconfig, HOME: home } });
    let hit: Finding | undefined;
    await waitUntil(
      'an H5 finding for the host kubectl',
      () => {
        const r = inRoot(['credwatch', 'findings', '--json', '--limit', '0', '--db', '/var/lib/credwatch/live.db'], 20_000);
        hit = r.stdout
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as Finding)
          .find((f) => f.rule === 'h5-kubectl-secret-access' && f.process?.pid === k.pid);
        return hit !== undefined;
      },
      15_000,
      250,
    );
    expect(hit?.process?.argv).toEqual(['kubectl', 'get', 'secrets', '-n', 'default']);
  });

  it('dpkg -r stops the running agent (no systemd here) and kernel audit is left exactly as found', async () => {
    expect(agent, 'the live agent did not start').not.toBeNull();
    const r = inRoot(['dpkg', '-r', 'credwatch'], 90_000);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const exit = await Promise.race([agentExit!, new Promise<null>((res) => setTimeout(() => res(null), 10_000))]);
    // SIGTERM from prerm: the agent's clean shutdown, exit 0 (timeout passes the child's status on).
    expect(exit).toEqual({ code: 0, signal: null });
    expect(kernelSnapshot()).toEqual(kernelBefore);
    expect(fs.existsSync(path.join(root, 'usr/lib/credwatch'))).toBe(false);
    expect(fs.existsSync(path.join(root, 'usr/bin/credwatch'))).toBe(false);
    // remove keeps configuration and state; purge takes them.
    expect(fs.existsSync(path.join(root, 'etc/credwatch/config.yaml'))).toBe(true);
    expect(fs.existsSync(path.join(root, 'var/lib/credwatch/live.db'))).toBe(true);
    const p = inRoot(['dpkg', '--purge', 'credwatch']);
    expect(p.status, p.stdout + p.stderr).toBe(0);
    expect(fs.existsSync(path.join(root, 'etc/credwatch'))).toBe(false);
    expect(fs.existsSync(path.join(root, 'var/lib/credwatch'))).toBe(false);
  });
});
