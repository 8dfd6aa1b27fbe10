/**
 * `credwatch replay FILE...` without --events: recorded logs through the same pipeline and detectors
 * as the daemon, findings printed (a table, or one JSON finding per line with --json). The format is
 * detected per file from its first bytes: Kubernetes audit JSON lines, or auditd text.
 *
 * Replay has no /proc of the recorded processes (they are gone, perhaps on another host), so the
 * detector works from the events alone: the process tree comes from the exec events in the log, and
 * the container from the runtime process that started it.
 */
import { MAX_MATCH_TEXT, matchStats } from '../../detect/linear-regex';
import { EVENT_BUDGET_MS } from '../../detect/engine';
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { Readable } from 'node:stream';
import { REPLAY_REASSEMBLY, type ReassemblerStats } from '../../audit/reassembler';
import { createHostStages } from '../../pipeline/host-stages';
import { DEFAULT_MAX_FINDING_BYTES, FindingCap } from '../../detect/finding-cap';
import { latestRevisions } from '../../detect/incidents';
import type { Finding } from '../../model/finding';
import { createKubeDetector } from '../../detect/kube';
import { TokenTrail } from '../../detect/token-trail';
import { TokenHome } from '../../detect/kube/token-home';
import { looksLikeKubeAudit } from '../../kube/event';
import { AuditPipeline } from '../../pipeline/audit-pipeline';
import { isPlainRegularFile, readAuditLogStream, readFileChunks, type LineSplitter } from '../../sources/auditlog';
import { maybeGunzip, peekStream } from '../../sources/decompress';
import { readKubeAuditStream } from '../../sources/kube-audit';
import { toJsonLine } from '../render/escape';
import { renderFindingsTable } from '../render/findings';
import { RuntimeFailure, UsageError } from '../errors';
import { loadRunnableRuleSet, type RuleSet } from '../../detect/rule-set';
import { firstTimeMs, inTimeOrder } from './replay-order';
import { Progress, progressMinBytes } from '../render/progress';
import { RuleFileError } from '../../detect/rule-loader';
import { KubeRuleError } from '../../detect/kube';
import { RuleTrustError } from '../../detect/rule-file-trust';
import { failOnUnreadable, unreadable, type UnreadableFile } from './replay-unreadable';
import { NativeFindingsReplay, nativeReplay } from './replay-native';
import { NODE_STATES_MAX } from '../../enrich/enricher';
import { nativeTriageFor } from '../../daemon/native-triage';
import type { Detector } from '../../detect/engine';
import type { NativeTriageSpec } from '../../native/types';

export interface ReplayFindingsOptions {
  json?: boolean;
  stats?: boolean;
  /** The operator's rule directory, loaded after the pack as the agent loads detections.rules_dir. */
  rulesDir?: string;
  /** The daemon's storage.max_finding_kb (default 64). */
  maxFindingKb?: number;
  /** `--jobs N` parent (replay-parallel.ts): the host files run in workers; this process joins and prints. */
  remote?: RemoteHostReplay;
  /** `--jobs N` worker: host findings and counters go here, unjoined and unprinted (no kube files come). */
  sink?: HostReplaySink;
}

/** A worker's failure, its message already naming the input (the parent passes it on as it is). */
export class WorkerFailure extends RuntimeFailure {}

/** What one host file's reading gave, in a worker: the findings emitted meanwhile and its record counts. */
export interface HostFileResult {
  findings: Finding[];
  records: number;
  parseErrors: number;
  overlongLines: number;
}

/** A worker's counters at its end, summed by the parent into the --stats lines. */
export interface HostRunCounters {
  records: number;
  events: number;
  parseErrors: number;
  overlongLines: number;
  argvCutEvents: number;
  argvCutArgs: number;
  argvCutBytes: number;
  uringEvents: number;
  uringUnknownOps: number;
  findings: number;
  textsCut: number;
  overBudget: number;
  slowestEventMs: number;
  /** Nodes (node=) with a process state of their own, and those forgotten past NODE_STATES_MAX. */
  nodeStates: number;
  nodeStatesForgotten: number;
}

/** The native scanner's counts in findings mode (one run's, or the --jobs workers' summed). */
export interface NativeFindingsCounts {
  fallback: number;
  triagePassed: number;
  triageUnsure: number;
  noted: number;
  native: number;
  notesAgain: number;
  badNotes: number;
  repeats: number;
  repeatTemplates: number;
  repeatEvictions: number;
  repeatSkipped: number;
  repeatsCollapsed: number;
  repeatsExpanded: number;
  repeatsLost: number;
}

function nativeFindingsCounts(fast: NativeFindingsReplay): NativeFindingsCounts {
  const n = fast.stats();
  // The scanner's counts (those this build's addon may lack are 0), then this side's.
  const scanned = { fallback: n.fallback, native: n.native, triagePassed: n.triagePassed ?? 0, triageUnsure: n.triageUnsure ?? 0, noted: n.noted ?? 0 };
  const repeats = { repeats: n.repeats ?? 0, repeatTemplates: n.repeatTemplates ?? 0, repeatEvictions: n.repeatEvictions ?? 0, repeatSkipped: n.repeatSkipped ?? 0 };
  return { ...scanned, ...repeats, notesAgain: fast.notesAgain, badNotes: fast.badNotes, repeatsCollapsed: fast.repeatsCollapsed, repeatsExpanded: fast.repeatsExpanded, repeatsLost: fast.repeatsLost };
}

/** Sums the workers' native counts; null unless every worker ran on the native scanner. */
export function sumNativeCounts(all: readonly (NativeFindingsCounts | null)[]): NativeFindingsCounts | null {
  if (all.length === 0 || all.some((n) => n === null)) return null;
  const out = { ...all[0]! };
  for (const n of all.slice(1)) for (const k of Object.keys(out) as (keyof NativeFindingsCounts)[]) out[k] += n![k];
  return out;
}

/** Host files replayed elsewhere: started with every host input in replay order, then asked file by file. */
export interface RemoteHostReplay {
  start(inputs: { file: string; input: Readable; head: string }[]): void;
  file(file: string): Promise<HostFileResult>;
  /** The findings emitted at the workers' ends (in-flight events flushed, windows closed) and their counters. */
  end(): Promise<{ findings: Finding[]; counters: HostRunCounters; native: NativeFindingsCounts | null }>;
}

export interface HostReplaySink {
  findings(raw: Finding[]): void;
  fileDone(file: string, counts: { records: number; parseErrors: number; overlongLines: number }): void;
  end(counters: HostRunCounters, native: NativeFindingsCounts | null): void;
}

const SNIFF_BYTES = 4096;

/**
 * The native scanner's triage: the agent's spec plus opens, and repeat collapse as the live reader has
 * it (agent.ts triageSpec): off with Sigma rules loaded, which read the records themselves.
 */
function replayTriage(detector: Detector): NativeTriageSpec {
  return { ...nativeTriageFor(detector).spec, repeats: detector.sigmaRules().length === 0 };
}

/** Fails early, before any output, when a file cannot be opened. */
function checkReadable(path: string): void {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UsageError(`cannot read ${path}: no such file`); // a typo: usage, exit 2
    throw new RuntimeFailure(`cannot read ${path}: ${code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
  }
  fs.closeSync(fd);
}

/** The input with gzip removed, and its first bytes as text for the format check. */
async function openInput(file: string): Promise<{ input: Readable; head: string }> {
  const raw: Readable = file === '-' ? process.stdin : fs.createReadStream(file, { highWaterMark: 1 << 20 });
  const input = await maybeGunzip(raw);
  const head = await peekStream(input);
  // Every input is opened before the first is read: a gzip that breaks further on (truncated) fails
  // its stream meanwhile, with nobody listening, which was an uncaught exception. The stream keeps the
  // error and its reader reports it ("reading FILE: unexpected end of file").
  input.on('error', () => {});
  return { input, head: head.subarray(0, SNIFF_BYTES).toString('utf8') };
}

/** The pack plus --rules-dir; a broken or missing directory is a usage error (exit 2) with file:line:col. */
function loadReplayRules(dir: string | undefined): RuleSet {
  if (dir !== undefined && !fs.existsSync(dir)) throw new UsageError(`${dir}: no such rules directory`);
  try {
    return loadRunnableRuleSet(dir ? [dir] : []);
  } catch (err) {
    if (err instanceof RuleFileError || err instanceof KubeRuleError || err instanceof RuleTrustError) throw new UsageError(err.message);
    throw err;
  }
}

export async function replayFindings(files: string[], opts: ReplayFindingsOptions): Promise<number> {
  if (files.length === 0) throw new UsageError('replay: give at least one FILE (or - for stdin)');
  if (files.filter((f) => f === '-').length > 1) throw new UsageError('replay: stdin (-) can be given only once');
  const host = os.hostname();
  // An incident is emitted again as it grows (a higher revision); a replay reports its final state once,
  // in the order incidents opened.
  const emitted: Finding[] = [];
  // A replay's trail never closes: every request of a read joins one finding (its latest revision is printed).
  const trail = new TokenTrail({ host, windowMs: Number.POSITIVE_INFINITY });
  const home = new TokenHome({ host });
  const cap = new FindingCap((opts.maxFindingKb ?? DEFAULT_MAX_FINDING_BYTES / 1024) * 1024);
  const emit = (raw: Finding[]): void => {
    if (opts.sink) return opts.sink.findings(raw); // capped and joined where they are printed
    const fs = cap.applyAll(raw);
    trail.noteHostFindings(fs);
    home.noteHostFindings(fs);
    emitted.push(...fs);
  };
  const set = loadReplayRules(opts.rulesDir);
  const stages = createHostStages({ host, users: null, rules: set.host, sigma: set.sigma });
  const detector = stages.detector;
  const kube = createKubeDetector({ host, rules: set.kube, sigma: set.sigma });
  const pipeline = new AuditPipeline({ stages, live: false, onFindings: emit, reassembler: REPLAY_REASSEMBLY });
  let kubeBad = 0;
  /** Kube events whose detection threw (counted by the reader, which goes on): no rule finished with them. */
  let kubeFailed = 0;

  // Check every file before any output, so a typo in the last name does not leave half a report.
  for (const f of files) if (f !== '-') checkReadable(f);
  const unusable: UnreadableFile[] = [];
  /** Lines over the length limit, skipped: counted by the TypeScript reader, or by C++ on the fast path. */
  let overlongInTs = 0;
  const inputs: { file: string; opened: { input: Readable; head: string } }[] = [];
  for (const file of files) {
    try {
      inputs.push({ file, opened: await openInput(file) });
    } catch (err) {
      throw new RuntimeFailure(`reading ${file === '-' ? 'stdin' : file}: ${(err as Error).message}`);
    }
  }
  // Progress as --events draws it: on a terminal, for a large input whose size is known (plain files).
  const sizes = files.map((f) => (f === '-' ? null : fs.statSync(f).size));
  const total = sizes.reduce<number>((a, n) => a + (n ?? 0), 0);
  const progress = new Progress(total, process.stderr.isTTY === true && total >= progressMinBytes() && !sizes.includes(null));
  let bytesBefore = 0;
  // The native scanner and triage (replay-native.ts) when the addon has them and every audit log can
  // be read again by name (stdin, or a pipe such as <(zcat ...), was sniffed from its stream, and its
  // head is in that stream only): boring events never become objects.
  // Not in a --jobs parent: its host files are read by the workers.
  const rereadable = (file: string): boolean => file !== '-' && fs.statSync(file).isFile();
  const native = opts.remote || inputs.some((x) => !rereadable(x.file) && !looksLikeKubeAudit(x.opened.head)) ? null : nativeReplay();
  const fast = native
    ? new NativeFindingsReplay(native, replayTriage(detector), {
        onEvent: (ev, template) => {
          const f = stages.onAuditEvent(ev, template);
          if (f.length > 0) emit(f);
        },
        onRepeat: (note, rebuild) => {
          const f = stages.onRepeat(note, rebuild);
          if (f === null) return false;
          if (f.length > 0) emit(f);
          return true;
        },
        onNote: (note, node) => stages.onProcessNote(note, node),
        onNoteAgain: (pid, _timeMs, count, node) => {
          // The entry is touched once (its LRU place); the detector counts every event.
          if (!stages.onProcessNoteAgain(pid, node)) return false;
          for (let i = 1; i < count; i++) stages.detector.onProcessNote();
          return true;
        },
      })
    : null;
  const auditStats = (): ReassemblerStats => (fast ? fast.stats() : pipeline.stats);
  const overlongLines = (): number => overlongInTs + (fast ? fast.stats().overlongLines : 0);
  const events = (): number => auditStats().events + kube.stats.events;
  const ordered = inTimeOrder(inputs, (x) => firstTimeMs(x.opened.head));
  opts.remote?.start(ordered.filter((x) => !looksLikeKubeAudit(x.opened.head)).map((x) => ({ file: x.file, input: x.opened.input, head: x.opened.head })));
  for (const { file, opened } of ordered) {
    const name = file === '-' ? 'stdin' : file;
    try {
      if (looksLikeKubeAudit(opened.head)) {
        const onEvent = (ev: Parameters<typeof kube.onKubeEvent>[0]): void => {
          emit([...trail.onKubeEvent(ev), ...kube.onKubeEvent(ev), ...home.onKubeEvent(ev)]);
          progress.update(bytesBefore, events());
        };
        const r = await readKubeAuditStream(opened.input, name, { onEvent });
        kubeBad += r.stats.badLines;
        kubeFailed += r.stats.handlerErrors;
        if (r.stats.events === 0 && r.stats.badLines > 0) unusable.push({ file: name, what: `${r.stats.badLines} bad kube audit lines` });
        emit(kube.flush());
        bytesBefore += sizes[files.indexOf(file)] ?? 0;
        continue;
      }
      if (opts.remote) {
        const r = await opts.remote.file(file);
        emit(r.findings);
        bytesBefore += sizes[files.indexOf(file)] ?? 0;
        progress.update(bytesBefore, events());
        const problem = unreadable(name, { records: r.records, unparsable: r.parseErrors, overlongLines: r.overlongLines });
        if (problem) unusable.push(problem);
        continue;
      }
      const before = { records: auditStats().records, parseErrors: auditStats().parseErrors, overlong: overlongLines() };
      if (fast) {
        opened.input.destroy();
        await fast.file(file, (b) => progress.update(bytesBefore + b, events()));
      } else {
        // A plain file is read again from the start into one reused buffer (see readFileChunks); the
      // sniffing stream is dropped. stdin and gzip stay on their stream.
        const plain = isPlainRegularFile(file);
        if (plain) opened.input.destroy();
        const read: { splitter?: LineSplitter } = {};
        for await (const batch of readAuditLogStream(plain ? readFileChunks(file) : opened.input, { onProgress: (b) => progress.update(bytesBefore + b, events()) }, read)) pipeline.pushBatch(batch);
        overlongInTs += read.splitter?.stats.overlongLines ?? 0;
      }
      bytesBefore += sizes[files.indexOf(file)] ?? 0;
      const counts = { records: auditStats().records - before.records, parseErrors: auditStats().parseErrors - before.parseErrors, overlongLines: overlongLines() - before.overlong };
      const problem = unreadable(name, { records: counts.records, unparsable: counts.parseErrors, overlongLines: counts.overlongLines });
      if (problem) unusable.push(problem);
      opts.sink?.fileDone(file, counts);
    } catch (err) {
      if (err instanceof WorkerFailure) throw err;
      throw new RuntimeFailure(`reading ${name}: ${(err as Error).message}`);
    }
  }
  progress.done();
  if (fast) fast.finish();
  else pipeline.flush();
  // Close the detector's windows at the end of the recorded time, not at the wall clock's now.
  pipeline.tick(Number.MAX_SAFE_INTEGER);
  // textsCut here is the workers' only: this process's own count is read at the end, after the kube files.
  const st = hostCounters(auditStats(), overlongLines(), detector.stats, 0, stages.enricher);
  if (opts.sink) {
    // A worker prints nothing: a lost repeat fails it here, or the parent's counts would hide it.
    if (fast && fast.repeatsLost > 0) throw new RuntimeFailure(`native replay lost ${fast.repeatsLost} repeat notes whose template this version does not hold`);
    opts.sink.end({ ...st, textsCut: matchStats.textsCut }, fast ? nativeFindingsCounts(fast) : null);
    return 0;
  }
  let scanner = fast ? nativeFindingsCounts(fast) : null;
  if (opts.remote) {
    const end = await opts.remote.end();
    emit(end.findings);
    addCounters(st, end.counters);
    scanner = end.native;
  }
  emit(trail.flush());

  // The latest revision of each incident, in recorded time (a kube file's findings among the host ones).
  const findings = inTimeOrder(latestRevisions(emitted), (f) => Date.parse(f.time) || null);
  if (opts.json) for (const f of findings) process.stdout.write(toJsonLine(f) + '\n');
  else {
    const width = process.stdout.isTTY ? process.stdout.columns : undefined; // fit the terminal, as `findings` does
    process.stdout.write(renderFindingsTable(findings, { localHost: host, ...(width ? { width } : {}) }));
  }
  if (opts.stats || st.parseErrors > 0 || kubeBad > 0 || kubeFailed > 0 || st.uringUnknownOps > 0 || st.overlongLines > 0) {
    process.stderr.write(
      `replay: ${st.records} records, ${st.events} events, ${st.parseErrors} unparsable records, ${st.overlongLines} overlong lines skipped, ${st.uringEvents} io_uring ops (${st.uringUnknownOps} of unknown op numbers), ${kubeBad} bad kube audit lines, ${kubeFailed} kube events whose detection failed, ${st.findings + kube.stats.findings} findings\n`,
    );
  }
  if (opts.stats && scanner) {
    const n = scanner;
    process.stderr.write(
      `replay: native scanner: ${n.fallback} events handed up in full (${n.triagePassed} a rule might fire on, ${n.triageUnsure} not understood by the triage, the rest of kinds it does not triage or incomplete), ${n.noted} triaged out as process notes (${n.notesAgain} of them the same process facts as the note before), ${n.native} printed, ${n.badNotes} unreadable notes\n` +
        `replay: repeat collapse: ${n.repeats} passed events sent as repeats of ${n.repeatTemplates} templates (${n.repeatEvictions} templates pushed out, ${n.repeatSkipped} events of a shape never collapsed), ${n.repeatsCollapsed} decided from their template, ${n.repeatsExpanded} rebuilt for the full path, ${n.repeatsLost} lost\n`,
    );
  }
  if (scanner && scanner.badNotes > 0) throw new RuntimeFailure(`native replay wrote ${scanner.badNotes} process notes this version cannot read`);
  if (scanner && scanner.repeatsLost > 0) throw new RuntimeFailure(`native replay lost ${scanner.repeatsLost} repeat notes whose template this version does not hold`);
  const ts = trail.stats;
  if (opts.stats || ts.malformedCredential > 0 || ts.requestsCut > 0) {
    process.stderr.write(
      `replay: token trail: ${ts.tokenReads} token reads (${ts.readsWithJti} with a jti), ${ts.joined.jti + ts.joined['pod-uid'] + ts.joined.legacy} requests tied (${ts.joined.jti} by jti, ${ts.joined['pod-uid']} by pod uid, ${ts.joined.legacy} legacy), ${ts.otherJti} with another jti not tied, ${ts.malformedCredential} malformed credential-ids, ${ts.requestsCut} requests not listed, ${ts.away} tied requests made away from the read's home, ${home.stats.awayFindings} used away from their node\n`,
    );
  }
  // The hostile-input guards say when they acted: a command line cut for matching, a slow event.
  const textsCut = matchStats.textsCut + st.textsCut; // this process's, and the workers' (st.textsCut)
  if (opts.stats || textsCut > 0 || st.overBudget > 0 || cap.stats.cut > 0 || st.argvCutEvents > 0) {
    process.stderr.write(
      `replay: ${st.argvCutEvents} argvs cut to what the stages read (${st.argvCutArgs} arguments, ${st.argvCutBytes} bytes not decoded), ${textsCut} texts cut to ${MAX_MATCH_TEXT} characters for matching, ${st.overBudget} events over the ${EVENT_BUDGET_MS} ms budget (slowest ${st.slowestEventMs} ms), ` +
        `${cap.stats.cut} findings cut to ${cap.maxBytes} bytes (${cap.stats.cutBytes} bytes before)\n`,
    );
  }
  // Each node of a multi-node log has its own process state; past NODE_STATES_MAX the least recently
  // seen node's is dropped, and that is said (its next events have no parents or containers from before).
  // (st: this process's and, with --jobs, every worker's: streams of different nodes run apart.)
  if (opts.stats || st.nodeStatesForgotten > 0) {
    process.stderr.write(`replay: ${st.nodeStates} nodes with a process state of their own, ${st.nodeStatesForgotten} node states forgotten (more than ${NODE_STATES_MAX} nodes)\n`);
  }
  failOnUnreadable(unusable);
  return 0;
}

function hostCounters(
  p: ReassemblerStats,
  overlongLines: number,
  d: { findings: number; overBudget: number; slowestEventMs: number },
  textsCut: number,
  nodes: { nodeStates: number; nodeStatesForgotten: number },
): HostRunCounters {
  return {
    records: p.records,
    events: p.events,
    parseErrors: p.parseErrors,
    overlongLines,
    argvCutEvents: p.argvCutEvents,
    argvCutArgs: p.argvCutArgs,
    argvCutBytes: p.argvCutBytes,
    uringEvents: p.uringEvents,
    uringUnknownOps: p.uringUnknownOps,
    findings: d.findings,
    textsCut,
    overBudget: d.overBudget,
    slowestEventMs: d.slowestEventMs,
    nodeStates: nodes.nodeStates,
    nodeStatesForgotten: nodes.nodeStatesForgotten,
  };
}

/** Adds a worker's counters into `into` (the slowest event is the slowest of all). */
export function addCounters(into: HostRunCounters, add: HostRunCounters): void {
  for (const k of Object.keys(into) as (keyof HostRunCounters)[]) into[k] = k === 'slowestEventMs' ? Math.max(into[k], add[k]) : into[k] + add[k];
}
