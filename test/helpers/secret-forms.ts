/**
 * The secret-bearing forms of issue 15 ("Redaction is a list with holes"), as inputs the attacker
 * controls: host command lines (rendered into kernel audit records exactly as the kernel writes them)
 * and Kubernetes API-server audit events. Each case names the secret that must not survive.
 */

export interface HostCase {
  name: string;
  argv: string[];
  secret: string;
}

export interface KubeCase {
  name: string;
  /** One audit.k8s.io/v1 Event (a finding-raising request), as an object. */
  event: Record<string, unknown>;
  secret: string;
}

/** An AWS access key id built from any generated text: AKIA + 16 of [A-Z0-9]. */
export const akia = (x: string): string => 'AKIA' + ('QX7RZB2M4PLKD9WE' + x.toUpperCase().replace(/[^A-Z0-9]/g, '7')).slice(-16);
/** A JWT-shaped token from generated text (base64url of '{"' starts every JWT). */
export const jwt = (x: string): string => `eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOi${x.replace(/[^A-Za-z0-9_-]/g, 'Q')}.c2lnbmF0dXJl`;

export const JWT =
  'eyJhbGciOiJSUzI1NiIsImtpZCI6ImxhYiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpkZWZhdWx0In0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU';

/** Host forms, each once; `s` is the case's own secret (distinct per case so a leak is attributable). */
export function hostCases(s: (i: number) => string): HostCase[] {
  const rows: [string, (x: string) => string[], ((x: string) => string)?][] = [
    ['curl Authorization Bearer header', (x) => ['curl', '-H', `Authorization: Bearer ${x}`, 'https://10.96.0.1/api']],
    ['curl Authorization Basic header', (x) => ['curl', '-H', `Authorization: Basic ${x}`, 'https://h/api']],
    ['curl -u user:pass', (x) => ['curl', '-u', `admin:${x}`, 'https://h/api']],
    ['curl -uuser:pass attached', (x) => ['curl', `-uadmin:${x}`, 'https://h/api']],
    ['curl --user user:pass', (x) => ['curl', '--user', `admin:${x}`, 'https://h/api']],
    ['URL user:pass@', (x) => ['curl', `https://admin:${x}@registry.local/v2/`]],
    ['git clone https token@', (x) => ['git', 'clone', `https://x-access-token:${x}@github.com/o/r.git`]],
    ['postgres URL', (x) => ['psql', `postgresql://app:${x}@db:5432/app`]],
    ['redis URL with empty user', (x) => ['redis-cli', '-u', `redis://:${x}@cache:6379/0`]],
    ['X-Auth-Token header', (x) => ['curl', '-H', `X-Auth-Token: ${x}`, 'https://h/']],
    ['X-API-Key header', (x) => ['curl', '-H', `X-API-Key: ${x}`, 'https://h/']],
    ['Cookie header', (x) => ['curl', '-H', `Cookie: session=${x}`, 'https://h/']],
    ['curl -b cookie', (x) => ['curl', '-b', `session=${x}`, 'https://h/']],
    ['api_key= in a query string', (x) => ['curl', `https://h/v1/data?format=json&api_key=${x}`]],
    ['--client-secret X separate', (x) => ['az', 'login', '--service-principal', '--client-secret', x]],
    ['--client-secret=X', (x) => ['az', 'login', `--client-secret=${x}`]],
    ['--docker-password X separate', (x) => ['kubectl', 'create', 'secret', 'docker-registry', 'r', '--docker-password', x]],
    ['--docker-password=X', (x) => ['kubectl', 'create', 'secret', 'docker-registry', 'r', `--docker-password=${x}`]],
    ['mysql -pX attached', (x) => ['mysql', '-uroot', `-p${x}`, 'app']],
    ['mysql --password=X', (x) => ['mysql', '-uroot', `--password=${x}`]],
    ['docker login -p X', (x) => ['docker', 'login', '-u', 'ci', '-p', x, 'registry.local']],
    ['docker login --password X', (x) => ['docker', 'login', '--username', 'ci', '--password', x]],
    ['GITHUB_TOKEN= via env', (x) => ['env', `GITHUB_TOKEN=${x}`, 'gh', 'repo', 'list']],
    ['PGPASSWORD= via env', (x) => ['env', `PGPASSWORD=${x}`, 'psql', '-h', 'db']],
    ['MYSQL_PWD= via env', (x) => ['env', `MYSQL_PWD=${x}`, 'mysql', '-h', 'db']],
    ['AWS_SECRET_ACCESS_KEY= via env', (x) => ['env', `AWS_SECRET_ACCESS_KEY=${x}`, 'aws', 's3', 'ls']],
    ['AKIA access key id', (x) => ['aws', 'configure', 'set', 'aws_access_key_id', x], akia],
    ['Vault hvs. token', (x) => ['vault', 'login', x], (x) => `hvs.${x}${x}`],
    ['sshpass -p X', (x) => ['sshpass', '-p', x, 'ssh', 'root@node']],
    ['redis-cli -a X', (x) => ['redis-cli', '-h', 'cache', '-a', x, 'keys', '*']],
    ['openssl -passin pass:X', (x) => ['openssl', 'rsa', '-in', 'k.pem', '-passin', `pass:${x}`]],
    ['openssl -passout pass:X', (x) => ['openssl', 'genrsa', '-aes256', '-passout', `pass:${x}`, '2048']],
    ['PEM private key in an argument', (x) => ['sh', '-c', `printf '%s' '-----BEGIN RSA PRIVATE KEY-----\nMIIEow${x}\n-----END RSA PRIVATE KEY-----' > /tmp/k`]],
    ['client-key-data: in an argument', (x) => ['sh', '-c', `echo '    client-key-data: ${x}' >> /root/.kube/config`]],
    ['--client-key-data X separate', (x) => ['kubectl', 'config', 'set-credentials', 'u', '--client-key-data', x]],
    ['base64 docker auth in JSON', (x) => ['sh', '-c', `echo '{"auths":{"registry.local":{"auth":"${x}"}}}' > /root/.docker/config.json`]],
    ['docker run -e API_KEY=X', (x) => ['docker', 'run', '-e', `API_KEY=${x}`, 'alpine']],
    ['docker run --env DB_PASSWORD=X', (x) => ['docker', 'run', '--env', `DB_PASSWORD=${x}`, 'alpine']],
    ['URL-encoded Authorization Bearer', (x) => ['curl', `https://10.96.0.1/api/v1/namespaces/d/pods/p/exec?command=sh&command=Authorization%3A%20Bearer%20${x}`], jwt],
    ['--token X separate', (x) => ['kubectl', '--token', x, 'get', 'secrets']],
    ['--password X holding a space (hex in audit)', (x) => ['tool', '--password', `${x} and more`]],
    ['--secret X separate', (x) => ['tool', '--secret', x]],
    ['kubectl --token in a sh -c string', (x) => ['sh', '-c', `kubectl --token ${x} get secrets -A`]],
  ];
  return rows.map(([name, build, secretOf], i) => {
    const secret = secretOf ? secretOf(s(i)) : s(i);
    return { name, argv: build(secret), secret };
  });
}

const podUri = (cmds: string[]): string =>
  `/api/v1/namespaces/default/pods/web/exec?${cmds.map((c) => `command=${encodeURIComponent(c)}`).join('&')}&container=web&stdout=true`;

function execEvent(i: number, requestURI: string): Record<string, unknown> {
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: `b1000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    stage: 'ResponseStarted',
    requestURI,
    verb: 'get',
    user: { username: 'dev-alice', groups: ['system:authenticated'] },
    sourceIPs: ['10.0.0.5'],
    userAgent: 'kubectl/v1.30.2 (linux/amd64) kubernetes/3968350',
    objectRef: { resource: 'pods', apiVersion: 'v1', namespace: 'default', name: 'web', subresource: 'exec' },
    responseStatus: { metadata: {}, code: 101 },
    requestReceivedTimestamp: `2026-01-10T10:00:${String(i % 60).padStart(2, '0')}.000000Z`,
    stageTimestamp: `2026-01-10T10:00:${String(i % 60).padStart(2, '0')}.000000Z`,
    annotations: { 'authorization.k8s.io/decision': 'allow', 'authorization.k8s.io/reason': '' },
  };
}

/** A pod create with the docker socket mounted (raises k8s-sensitive-hostpath), carrying `pod`. */
function podCreateEvent(i: number, container: Record<string, unknown>, annotations: Record<string, string> = {}): Record<string, unknown> {
  return {
    ...execEvent(i, '/api/v1/namespaces/app/pods'),
    level: 'Request',
    stage: 'ResponseComplete',
    verb: 'create',
    objectRef: { resource: 'pods', apiVersion: 'v1', namespace: 'app' },
    responseStatus: { metadata: {}, code: 201 },
    requestObject: {
      kind: 'Pod',
      apiVersion: 'v1',
      metadata: { name: `dind-${i}`, annotations },
      spec: {
        containers: [{ name: 'c', image: 'alpine:3.19', ...container, volumeMounts: [{ name: 'sock', mountPath: '/var/run/docker.sock' }] }],
        volumes: [{ name: 'sock', hostPath: { path: '/var/run/docker.sock', type: 'Socket' } }],
      },
    },
  };
}

export function kubeCases(s: (i: number) => string): KubeCase[] {
  const rows: [string, (x: string, i: number) => Record<string, unknown>, ((x: string) => string)?][] = [
    ['exec URI Authorization%3A%20Bearer <jwt>', (x, i) => execEvent(i, podUri(['curl', '-H', `Authorization: Bearer ${x}`, 'https://kubernetes.default/api'])), () => JWT],
    ['exec URI --token X as separate commands', (x, i) => execEvent(i, podUri(['kubectl', '--token', x, 'get', 'secrets']))],
    ['exec URI mysql -pX', (x, i) => execEvent(i, podUri(['mysql', '-uroot', `-p${x}`]))],
    ['exec URI PGPASSWORD=X', (x, i) => execEvent(i, podUri(['env', `PGPASSWORD=${x}`, 'psql']))],
    ['exec URI URL user:pass@', (x, i) => execEvent(i, podUri(['curl', `https://admin:${x}@registry.local/v2/`]))],
    [
      'last-applied-configuration with an env password',
      (x, i) =>
        podCreateEvent(i, {}, {
          'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({
            apiVersion: 'v1',
            kind: 'Pod',
            spec: { containers: [{ name: 'c', env: [{ name: 'DB_PASSWORD', value: x }] }] },
          }),
        }),
    ],
    ['env DB_PASSWORD value', (x, i) => podCreateEvent(i, { env: [{ name: 'DB_PASSWORD', value: x }] })],
    ['container args --password X', (x, i) => podCreateEvent(i, { args: ['--password', x] })],
    ['container command sh -c with -u user:pass', (x, i) => podCreateEvent(i, { command: ['sh', '-c', `curl -u admin:${x} https://h/`] })],
    ['env value holding a URL with user:pass@', (x, i) => podCreateEvent(i, { env: [{ name: 'DATABASE_URL', value: `postgres://app:${x}@db/app` }] })],
    ['env value AWS key id AKIA…', (x, i) => podCreateEvent(i, { env: [{ name: 'AWS_ACCESS_KEY_ID', value: x }] }), () => 'AKIA' + 'ZB7QX2M4PLKD9WEA'],
  ];
  return rows.map(([name, build, secretOf], i) => {
    const secret = secretOf ? secretOf(s(i)) : s(i);
    return { name, event: build(secret, 500 + i), secret };
  });
}

// ---- kernel rendering -------------------------------------------------------------------------

/** The kernel's rule (audit_string_contains_control): hex when a byte is < 0x21, > 0x7e or a '"'. */
function needsHex(b: Buffer): boolean {
  for (const c of b) if (c < 0x21 || c > 0x7e || c === 0x22) return true;
  return false;
}

const MAX_EXECVE_ARG = 7500;

/** EXECVE record bodies for argv, the way audit_log_execve_info writes them (long arguments split). */
function execveBodies(argv: string[]): string[] {
  const bodies: string[] = [];
  let cur = `argc=${argv.length}`;
  argv.forEach((a, i) => {
    const b = Buffer.from(a, 'utf8');
    const hex = needsHex(b);
    if (b.length <= MAX_EXECVE_ARG) {
      const field = ` a${i}=${hex ? b.toString('hex').toUpperCase() : `"${a}"`}`;
      if (cur.length + field.length > 7900) {
        bodies.push(cur);
        cur = field.trimStart();
      } else cur += field;
      return;
    }
    bodies.push(cur);
    cur = '';
    for (let k = 0, off = 0; off < b.length; k++, off += MAX_EXECVE_ARG / 2) {
      const chunk = b.subarray(off, off + MAX_EXECVE_ARG / 2);
      const lenPart = k === 0 ? `a${i}_len=${b.length} ` : '';
      bodies.push(`${lenPart}a${i}[${k}]=${hex ? chunk.toString('hex').toUpperCase() : `"${chunk.toString('latin1')}"`}`);
    }
  });
  if (cur !== '') bodies.push(cur);
  return bodies.filter((x) => x !== '');
}

export interface ExecSpec {
  pid: number;
  ppid: number;
  argv: string[];
  exe?: string;
}

/** The audit log lines of one execve event (SYSCALL, EXECVE…, CWD, PATH, PROCTITLE). */
export function execLines(serial: number, e: ExecSpec): string[] {
  const stamp = `msg=audit(1795355797.${String(serial % 1000).padStart(3, '0')}:${serial}):`;
  const comm = (e.argv[0] ?? 'x').split('/').pop()!.slice(0, 15);
  const exe = e.exe ?? `/usr/bin/${comm}`;
  const lines = [
    `node=lab-node type=SYSCALL ${stamp} arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=${e.ppid} pid=${e.pid} auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=${serial} comm="${comm}" exe="${exe}" key="credwatch:rec"`,
    ...execveBodies(e.argv).map((b) => `node=lab-node type=EXECVE ${stamp} ${b}`),
    `node=lab-node type=CWD ${stamp} cwd="/root"`,
    `node=lab-node type=PATH ${stamp} item=0 name="${exe}" inode=1 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`,
    `node=lab-node type=PROCTITLE ${stamp} proctitle=${Buffer.from(e.argv.join('\0'), 'utf8').subarray(0, 128).toString('hex').toUpperCase()}`,
  ];
  return lines;
}

/**
 * One host case as a log: the form's own exec, with a runtime-socket argument appended so it raises
 * h7 itself (evidence: its EXECVE and PROCTITLE), then a child `curl --unix-socket` whose finding
 * carries the form's argv among its parents.
 */
export function hostCaseLines(index: number, argv: string[]): string[] {
  const pid = 20000 + index * 4;
  const serial = 100000 + index * 4;
  return [
    ...execLines(serial, { pid, ppid: 1000, argv: [...argv, '--unix-socket=/run/docker.sock'], exe: `/usr/local/bin/${(argv[0] ?? 'x').split('/').pop()}` }),
    ...execLines(serial + 1, { pid: pid + 1, ppid: pid, argv: ['curl', '--unix-socket', '/var/run/docker.sock', 'http://localhost/containers/json'] }),
  ];
}
