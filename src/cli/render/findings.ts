/** Findings as an operator reads them: a one-line-per-finding table and a detailed view with evidence. */
import type { Finding } from '../../model/finding';
import { fitCell } from './escape';
import { renderTable, type Column } from './table';
import { formatTime } from './time';

/** Short process description: executable and arguments (or the Kubernetes actor for kube-audit findings). */
export function processSummary(f: Finding): string {
  const p = f.process;
  if (p) {
    const exe = p.exe ?? p.comm ?? '?';
    const args = (p.argv ?? []).slice(1);
    return [exe, ...args].join(' ');
  }
  const k = f.kube;
  if (k) return `k8s ${k.user ?? '?'} ${k.verb ?? ''} ${k.resource ?? ''}${k.subresource ? '/' + k.subresource : ''}`.trim();
  return '-';
}

export function shortContainer(f: Finding): string {
  return f.container ? f.container.id.slice(0, 12) : '-';
}

export interface FindingsTableOptions {
  /** Host name of this node; the HOST column appears only when some finding comes from elsewhere. */
  localHost: string;
  /** Terminal width, when writing to a terminal: the PROCESS column is narrowed to fit. */
  width?: number;
}

export function renderFindingsTable(findings: readonly Finding[], opts: FindingsTableOptions): string {
  const withHost = findings.some((f) => f.host !== opts.localHost);
  const columns: Column[] = [
    { header: 'ID', max: 12, min: 8 },
    { header: 'TIME', max: 20 },
    { header: 'SEVERITY', max: 8 },
    { header: 'RULE', max: 40, min: 12 },
    { header: 'CONTAINER', max: 12, min: 9 },
    ...(withHost ? [{ header: 'HOST', max: 32, min: 12 }] : []),
    { header: 'PROCESS', max: 80 },
  ];
  const rows = findings.map((f) => [
    f.id.slice(0, 12),
    formatTime(f.time),
    f.severity,
    f.rule,
    shortContainer(f),
    ...(withHost ? [f.host] : []),
    processSummary(f),
  ]);
  // At 80 columns the process keeps 12 (its program name); wider terminals give it the rest.
  return renderTable(columns, rows, opts.width !== undefined ? { width: opts.width, minLastWidth: 12 } : {});
}

const VALUE_MAX = 1024;
const RECORD_MAX = 4096;

/** Escaped, bounded value for the detail view; "-" for absent. */
function v(x: string | number | null | undefined, max = VALUE_MAX): string {
  if (x === null || x === undefined || x === '') return '-';
  return fitCell(String(x), max);
}

function argvText(argv: string[] | null): string {
  if (!argv || argv.length === 0) return '-';
  // Each argument escaped on its own and quoted when it holds spaces or quotes, so the boundaries stay
  // visible. Backslashes are already doubled by the escaping, so \" inside quotes is unambiguous.
  return argv
    .map((a) => fitCell(a, VALUE_MAX))
    .map((a) => (a === '' || /[\s"]/.test(a) ? `"${a.replace(/"/g, '\\"')}"` : a))
    .join(' ');
}

export function renderFindingDetail(f: Finding): string {
  const out: string[] = [];
  const kv = (k: string, val: string) => out.push(`${k.padEnd(12)}${val}`);
  kv('Finding', v(f.id));
  kv('Rule', `${v(f.rule)}: ${v(f.title)}`);
  kv('Severity', `${v(f.severity)} (score ${f.score}, confidence ${v(f.confidence)})`);
  kv('Time', formatTime(f.time));
  kv('Host', v(f.host));
  kv('Source', v(f.source));
  kv('MITRE', f.mitre.map((m) => v(m)).join(', ') || '-');
  kv('Covers', f.covers.map((m) => v(m)).join(', ') || '-');
  kv('Indicators', f.indicators.map((m) => v(m)).join(', ') || '-');
  if (f.description) kv('Description', v(f.description, 4096));

  const p = f.process;
  if (p) {
    out.push('', 'Process');
    kv('  pid', `${v(p.pid)} (ppid ${v(p.ppid)})`);
    kv('  exe', v(p.exe));
    kv('  comm', v(p.comm));
    kv('  argv', argvText(p.argv));
    kv('  cwd', v(p.cwd));
    kv('  user', `uid ${v(p.uid)} (${v(p.user)}), auid ${v(p.auid)}`);
    kv('  tty', `${v(p.tty)}${p.interactive ? ' (interactive)' : ''}`);
    out.push('  Process chain (nearest parent first)');
    out.push(`    ${v(p.pid)}  ${v(p.exe)}  ${argvText(p.argv)}`);
    p.parents.forEach((a, i) => out.push(`    ${'  '.repeat(i)}└─ ${v(a.pid)}  ${v(a.exe)}  ${argvText(a.argv)}`));
  }

  const c = f.container;
  if (c) {
    out.push('', 'Container');
    kv('  id', v(c.id));
    kv('  runtime', v(c.runtime));
    kv('  pod uid', v(c.pod_uid));
  }

  const k = f.kube;
  if (k) {
    out.push('', 'Kubernetes');
    kv('  user', v(k.user));
    kv('  groups', k.groups.map((g) => v(g)).join(', ') || '-');
    kv('  as', v(k.impersonated_user));
    kv('  request', `${v(k.verb)} ${v(k.resource)}${k.subresource ? '/' + v(k.subresource) : ''} ${v(k.namespace)}/${v(k.name)}`);
    kv('  response', v(k.response_code));
    kv('  source ips', k.source_ips.map((ip) => v(ip)).join(', ') || '-');
    kv('  user agent', v(k.user_agent));
    kv('  audit id', v(k.audit_id));
  }

  out.push('', `Evidence (${f.evidence.length} event${f.evidence.length === 1 ? '' : 's'}, redacted)`);
  f.evidence.forEach((e, i) => {
    out.push(`  [${i + 1}] ${v(e.event_id)}  ${formatTime(e.time)}  role ${v(e.role)}`);
    for (const r of e.records) out.push(`      ${v(r.type, 32).padEnd(12)} ${v(r.text, RECORD_MAX)}`);
  });
  return out.join('\n') + '\n';
}
