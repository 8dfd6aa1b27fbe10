/**
 * Groups records into events. An event is the records sharing (node, serial, timestamp) — the
 * `audit(SEC.MS:SERIAL)` stamp — and records of different events interleave.
 *
 * When is an event complete? (the same rule auparse/ausearch apply, adapted to a live stream)
 *  - EOE (1320) completes its event: the kernel writes it last in a syscall event.
 *  - User-space messages (USER 1005; 1100–1299, the USER_ and DAEMON_ families; 2100–2999, the
 *    user-space ANOM_, RESP_, ROLE_, CRYPTO_ and VIRT_ families) are single-record events: emitted at once, unless records with the same stamp
 *    are already in flight (a USER_* message sent inside an audited syscall shares its stamp), in
 *    which case they join that event and it waits for its EOE.
 *  - Every other kernel record (SYSCALL, PATH, EXECVE, CWD, SOCKADDR, PROCTITLE, but also AVC,
 *    CONFIG_CHANGE, NETFILTER_CFG, SECCOMP, ANOM_*, LOGIN...) may be one part of a syscall event, or a
 *    whole event on its own when no syscall rule matched. Such events wait for EOE, and otherwise
 *    complete by age (`maxAgeMs`, on the wall clock even when the stream is idle: call tick();
 *    or, for replay, `maxAgeRecords`: after that many further records).
 *
 * `incomplete: true` means we did not see the end of the event: it was a late record of an event
 * already emitted, or it was emitted without an EOE (aged out, evicted because `maxInFlight` events
 * were in flight, or flushed) while holding records that only exist inside a syscall event
 * (SYSCALL, PATH, CWD, EXECVE, SOCKADDR, PROCTITLE, ...) on a stream that does carry EOE. A lone
 * AVC or CONFIG_CHANGE emitted that way is complete: nothing else was coming. Streams without EOE
 * (auditd 3.x logs never contain it; rule sets may exclude it) complete syscall events by age
 * alone, unflagged. Evictions are counted in `evicted` either way.
 *
 * Serial gaps: kernel serials rise by one per event that emitted any record (serials are taken
 * lazily when a record is logged), per boot. `serialGaps` is the net count, per node, of serials
 * between the lowest and highest seen that never arrived — a jump forward adds the skipped
 * serials, a new event below the highest serial (reordering) takes one back. A jump of more than
 * `maxSerialJump` is read as a restart (reboot, another log) and not counted. On a complete
 * stream (our own unicast netlink socket) a gap is loss; in an auditd log it may also be records
 * auditd or its filters did not write, so it is a hint there, not proof.
 *
 * Late records: a record whose stamp was emitted recently (the last `rememberEmitted` stamps per
 * node) is counted in `lateRecords` and becomes its own event, flagged incomplete; never dropped.
 *
 * Per record: one parse, one Map lookup by numeric serial (per node), an array push; no closures.
 */
import type { AuditEvent, RawRecord } from './event';
import { parseRecord, type ParsedRecord, type RecordParseFailure } from './record';
import { buildEvent, type BuildCounters, type BuildOptions } from './event-builder';
import type { ArgvMode } from './execve';
import { AUDIT_EOE } from './record-types';
import { RecentStamps } from './recent-stamps';

export interface ReassemblerOptions {
  onEvent: (ev: AuditEvent) => void;
  /** Called for each record that failed to parse (after counting it). */
  onParseError?: (failure: RecordParseFailure) => void;
  /** Maximum events in flight; the oldest is evicted (emitted incomplete) beyond it. Default 4096. */
  maxInFlight?: number;
  /** Age after which an event without EOE is emitted (live streams). Default 2000 ms. */
  maxAgeMs?: number;
  /** Wall clock for ageing. Default Date.now. */
  now?: () => number;
  /**
   * Replay: age events by input instead of time. An event still open after this many further
   * records is complete. A log's timestamps cannot stand in for the wall clock (a sparse log has
   * minutes between events, and a record written a moment late then looks minutes late), while a
   * record count bounds memory on dense logs and tolerates reordering within the window.
   */
  maxAgeRecords?: number;
  /** Recently emitted stamps remembered per node to recognise late records. Default 8192. */
  rememberEmitted?: number;
  /** A forward serial jump larger than this is a restart, not a gap. Default 100000. */
  maxSerialJump?: number;
  /**
   * How events' argv is built: 'exact' (default; `replay --events`) or 'bounded', what the pipeline
   * reads and no more (src/audit/argv-bound.ts; cuts are counted in the argvCut* stats).
   */
  argv?: ArgvMode;
}

/** Distinct nodes tracked at once (a real fleet's log merges far fewer). */
const MAX_NODES = 4096;

/**
 * Settings replay uses for files (and tests use to reassemble fixtures the same way): age by a
 * window of 20000 records, with room for every event that window can hold.
 */
export const REPLAY_REASSEMBLY = { maxAgeRecords: 20_000, maxInFlight: 32_768 } as const;

export interface ReassemblerStats {
  records: number;
  events: number;
  incomplete: number;
  evicted: number;
  parseErrors: number;
  serialGaps: number;
  lateRecords: number;
  /** Values inside records that could not be decoded exactly (see AuditEvent.problems). */
  decodeErrors: number;
  /** Events holding an io_uring operation (URINGOP records). */
  uringEvents: number;
  /** Of those, operations whose number we do not know (still emitted, kind "other"). */
  uringUnknownOps: number;
  /** Bounded argv (ReassemblerOptions.argv): events whose argv was cut, arguments cut, bytes not kept. */
  argvCutEvents: number;
  argvCutArgs: number;
  argvCutBytes: number;
}

interface Entry {
  node: string | null;
  serial: number;
  timeMs: number;
  bornAt: number;
  records: ParsedRecord[];
  late: boolean;
  done: boolean;
  needsEoe: boolean;
}

interface NodeState {
  inFlight: Map<number, Entry>;
  /** serial -> audit time (ms) of recently emitted events, oldest forgotten first. */
  emitted: RecentStamps;
  lowest: number;
  highest: number;
  /**
   * Whether this node's stream carries EOE at all. The kernel always sends it, but auditd (3.x)
   * does not write it to its log, and rule sets can exclude it: where none was ever seen, a missing
   * EOE says nothing about completeness.
   */
  eoeSeen: boolean;
}

/** Types that only occur inside a syscall event: seeing one without EOE means the end is missing. */
function isSyscallOnlyType(type: number): boolean {
  switch (type) {
    case 1300: // SYSCALL
    case 1302: // PATH
    case 1303: // IPC
    case 1304: // SOCKETCALL
    case 1306: // SOCKADDR
    case 1307: // CWD
    case 1309: // EXECVE
    case 1311: // IPC_SET_PERM
    case 1312: // MQ_OPEN
    case 1313: // MQ_SENDRECV
    case 1314: // MQ_NOTIFY
    case 1315: // MQ_GETSETATTR
    case 1317: // FD_PAIR
    case 1318: // OBJ_PID
    case 1321: // BPRM_FCAPS
    case 1322: // CAPSET
    case 1323: // MMAP
    case 1327: // PROCTITLE
    case 1336: // URINGOP
    case 1337: // OPENAT2
      return true;
    default:
      return false;
  }
}

/** User-space message types: always a whole event by themselves. */
export function isUserMessageType(type: number): boolean {
  return type === 1005 || (type >= 1100 && type <= 1299) || (type >= 2100 && type <= 2999);
}

export class Reassembler {
  readonly stats: ReassemblerStats = {
    records: 0,
    events: 0,
    incomplete: 0,
    evicted: 0,
    parseErrors: 0,
    serialGaps: 0,
    lateRecords: 0,
    decodeErrors: 0,
    uringEvents: 0,
    uringUnknownOps: 0,
    argvCutEvents: 0,
    argvCutArgs: 0,
    argvCutBytes: 0,
  };

  private readonly onEvent: (ev: AuditEvent) => void;
  private readonly build: BuildOptions;
  private readonly onParseError: ((f: RecordParseFailure) => void) | undefined;
  private readonly maxInFlight: number;
  private readonly maxAgeMs: number;
  private readonly nowFn: () => number;
  private readonly byRecords: boolean;
  private readonly rememberEmitted: number;
  private readonly maxSerialJump: number;
  private readonly nodes = new Map<string | null, NodeState>();
  /** Entries in creation order; finished ones are skipped lazily. */
  private queue: Entry[] = [];
  private queueHead = 0;
  private inFlightCount = 0;
  private pushed = 0;
  /** The clock at the last ageing pass, to notice it stepping back. */
  private lastNow = -Infinity;

  constructor(opts: ReassemblerOptions) {
    this.onEvent = opts.onEvent;
    this.build = { argv: opts.argv ?? 'exact' };
    this.onParseError = opts.onParseError;
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? 4096);
    this.byRecords = opts.maxAgeRecords !== undefined;
    this.maxAgeMs = Math.max(0, this.byRecords ? (opts.maxAgeRecords as number) : (opts.maxAgeMs ?? 2000));
    this.nowFn = opts.now ?? Date.now;
    this.rememberEmitted = Math.max(1, opts.rememberEmitted ?? 8192);
    this.maxSerialJump = opts.maxSerialJump ?? 100_000;
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  private now(): number {
    return this.byRecords ? this.pushed : this.nowFn();
  }

  /** Parses and adds one record. `node` overrides a `node=` prefix in the text. */
  push(rec: RawRecord, node?: string | null): void {
    this.stats.records++;
    const parsed = parseRecord(rec, node);
    if (parsed.failed) {
      this.stats.parseErrors++;
      if (this.onParseError) this.onParseError(parsed);
      return;
    }
    this.pushParsed(parsed);
  }

  /**
   * An event the native triage consumed whole and replaced by a process note
   * (src/native/process-note.ts): its records and its serial still count, so `records`, `events`
   * and serial-gap tracking are the same as if the records had come through.
   */
  noteConsumed(serial: number, records: number, node: string | null = null): void {
    this.stats.records += records;
    this.stats.events++;
    const state = this.nodeState(node);
    state.eoeSeen = true; // the note's event ended with an EOE
    this.trackSerial(state, serial);
  }

  /** Adds an already parsed record (counted in `records` only by push()). */
  pushParsed(rec: ParsedRecord): void {
    const timeMs = rec.sec * 1000 + rec.ms;
    this.pushed++;
    const state = this.nodeState(rec.node);
    if (rec.type === AUDIT_EOE) state.eoeSeen = true;
    let entry = state.inFlight.get(rec.serial);
    if (entry !== undefined && entry.timeMs !== timeMs) {
      // Same serial, different time: a serial reused after a restart. Finish the old event first.
      this.finishAged(entry, state);
      entry = undefined;
    }
    if (entry === undefined) {
      const emittedAt = state.emitted.get(rec.serial);
      const late = emittedAt === timeMs;
      if (late) this.stats.lateRecords++;
      // auditd numbers its own DAEMON_* records from a separate counter: they say nothing about
      // kernel serials.
      else if (rec.type < 1200 || rec.type > 1299) this.trackSerial(state, rec.serial);
      if (!late && isUserMessageType(rec.type)) {
        // The common case for user messages: a whole event in one record, no bookkeeping needed.
        this.emit(rec.serial, timeMs, [rec], false, state);
        this.expire();
        return;
      }
      entry = {
        node: rec.node,
        serial: rec.serial,
        timeMs,
        bornAt: this.now(),
        records: [rec],
        late,
        done: false,
        needsEoe: isSyscallOnlyType(rec.type),
      };
      state.inFlight.set(rec.serial, entry);
      this.queue.push(entry);
      this.inFlightCount++;
    } else {
      entry.records.push(rec);
      if (!entry.needsEoe && isSyscallOnlyType(rec.type)) entry.needsEoe = true;
    }
    if (rec.type === AUDIT_EOE) this.finish(entry, state, entry.late);
    if (this.inFlightCount > this.maxInFlight) this.evictOldest();
    this.expire();
  }

  /** Ages events on the clock; call it periodically when the stream is idle. */
  tick(nowMs?: number): void {
    this.expire(nowMs ?? this.now());
  }

  /** Emits everything in flight (end of input or shutdown), oldest first. */
  flush(): void {
    for (let i = this.queueHead; i < this.queue.length; i++) {
      const e = this.queue[i] as Entry;
      if (!e.done) this.finishAged(e, this.nodeState(e.node));
    }
    this.queue = [];
    this.queueHead = 0;
  }

  private nodeState(node: string | null): NodeState {
    let s = this.nodes.get(node);
    if (s === undefined) {
      if (this.nodes.size >= MAX_NODES) this.forgetIdleNode();
      s = { inFlight: new Map(), emitted: new RecentStamps(this.rememberEmitted), lowest: -1, highest: -1, eoeSeen: false };
      this.nodes.set(node, s);
    }
    return s;
  }

  /**
   * Damaged or hostile log lines can carry any number of distinct `node=` names; each would keep its
   * own maps forever. Forget the oldest node with nothing in flight (its late-record and serial-gap
   * memory only).
   */
  private forgetIdleNode(): void {
    for (const [name, st] of this.nodes) {
      if (st.inFlight.size === 0) {
        this.nodes.delete(name);
        return;
      }
    }
  }

  private trackSerial(state: NodeState, serial: number): void {
    if (state.highest < 0 || serial - state.highest > this.maxSerialJump || state.highest - serial > this.maxSerialJump) {
      state.lowest = serial;
      state.highest = serial;
      return;
    }
    if (serial > state.highest) {
      this.stats.serialGaps += serial - state.highest - 1;
      state.highest = serial;
    } else if (serial < state.highest) {
      if (serial > state.lowest) {
        if (this.stats.serialGaps > 0) this.stats.serialGaps--;
      } else if (serial < state.lowest) {
        // Earlier than anything seen: widen the window; the serials in between are missing.
        this.stats.serialGaps += state.lowest - serial - 1;
        state.lowest = serial;
      }
    }
  }

  private expire(nowMs?: number): void {
    if (this.inFlightCount === 0) {
      if (this.queueHead > 0) {
        this.queue = [];
        this.queueHead = 0;
      }
      return;
    }
    const now = nowMs ?? this.now();
    // The wall clock stepped back (NTP, an operator): events born "in the future" would wait out the
    // whole step before ageing. Restart their age at the new time instead.
    if (now < this.lastNow) this.rebaseAges(now);
    this.lastNow = now;
    const limit = now - this.maxAgeMs;
    while (this.queueHead < this.queue.length) {
      const e = this.queue[this.queueHead] as Entry;
      if (!e.done) {
        if (e.bornAt > limit) break;
        this.finishAged(e, this.nodeState(e.node));
      }
      this.queueHead++;
    }
    this.compactQueue();
  }

  private rebaseAges(now: number): void {
    for (let i = this.queueHead; i < this.queue.length; i++) {
      const e = this.queue[i] as Entry;
      if (!e.done && e.bornAt > now) e.bornAt = now;
    }
  }

  private evictOldest(): void {
    while (this.queueHead < this.queue.length) {
      const e = this.queue[this.queueHead++] as Entry;
      if (e.done) continue;
      this.stats.evicted++;
      this.finishAged(e, this.nodeState(e.node));
      break;
    }
    this.compactQueue();
  }

  private compactQueue(): void {
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  private finishAged(e: Entry, state: NodeState): void {
    this.finish(e, state, e.late || (e.needsEoe && state.eoeSeen));
  }

  private finish(e: Entry, state: NodeState, incomplete: boolean): void {
    e.done = true;
    this.inFlightCount--;
    if (state.inFlight.get(e.serial) === e) state.inFlight.delete(e.serial);
    this.emit(e.serial, e.timeMs, e.records, incomplete, state);
  }

  private emit(serial: number, timeMs: number, records: ParsedRecord[], incomplete: boolean, state: NodeState): void {
    state.emitted.add(serial, timeMs);
    this.stats.events++;
    if (incomplete) this.stats.incomplete++;
    const ev = buildEvent(records, incomplete, this.stats as BuildCounters, this.build);
    this.onEvent(ev);
  }
}
