/**
 * The collector's storage: the same SQLite findings store the agent uses (src/store), in its own file,
 * so `credwatch findings --db collector.db` works on the collector host too. Ingest is idempotent by
 * finding id (the store's INSERT OR IGNORE). Agents are remembered in the store's key/value state
 * (`collector.agent.<id>`: first/last seen, last host, counts), so no extra table is needed.
 */
import type { Finding } from '../detect/finding';
import { openStore, type FindingStore } from '../store';
import type { FindingsQuery } from '../store/types';

export interface AgentRecord {
  agent: string;
  firstSeenMs: number;
  lastSeenMs: number;
  lastHost: string | null;
  batches: number;
  findings: number;
  duplicates: number;
}

export interface CollectorStore {
  /** Stores a batch in one transaction; returns how many were new and how many already stored. */
  ingest(agent: string, findings: Finding[], nowMs: number): { accepted: number; duplicates: number };
  /** Newest first. */
  query(q: FindingsQuery): Finding[];
  agents(): AgentRecord[];
  /** Deletes findings older than `days` (in bounded steps); returns how many went. */
  retain(days: number, nowMs: number): Promise<number>;
  close(): void;
}

const AGENT_KEY = 'collector.agent.';

export function collectorStoreOn(store: FindingStore): CollectorStore {
  const remember = (agent: string, host: string | null, n: number, dup: number, nowMs: number): void => {
    const prev = store.state.get(AGENT_KEY + agent);
    let rec: AgentRecord = { agent, firstSeenMs: nowMs, lastSeenMs: nowMs, lastHost: host, batches: 0, findings: 0, duplicates: 0 };
    if (prev !== undefined) {
      try {
        rec = JSON.parse(prev) as AgentRecord;
      } catch {
        /* a damaged record is replaced */
      }
    }
    rec.lastSeenMs = nowMs;
    if (host !== null) rec.lastHost = host;
    rec.batches++;
    rec.findings += n;
    rec.duplicates += dup;
    store.state.set(AGENT_KEY + agent, JSON.stringify(rec));
  };
  return {
    ingest(agent, findings, nowMs) {
      // Insert and agent bookkeeping in one transaction: a crash leaves both or neither.
      return store.db.transaction(() => {
        const accepted = store.insertFindings(findings);
        const duplicates = findings.length - accepted;
        remember(agent, findings[findings.length - 1]?.host ?? null, accepted, duplicates, nowMs);
        return { accepted, duplicates };
      })();
    },
    query: (q) => store.queryFindings(q),
    agents() {
      const rows = store.db.prepare("SELECT value FROM agent_state WHERE key >= ? AND key < ? ORDER BY key").all(AGENT_KEY, `${AGENT_KEY}\u{10FFFF}`) as { value: string }[];
      return rows.map((r) => JSON.parse(r.value) as AgentRecord);
    },
    retain: async (days, nowMs) => (await store.enforceRetentionAsync({ maxAgeDays: days }, nowMs)).deleted,
    close: () => store.close(),
  };
}

export function openCollectorStore(path: string): CollectorStore {
  return collectorStoreOn(openStore(path));
}
