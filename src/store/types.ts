/**
 * Contracts between the findings store and its readers (CLI, shippers, collector). The store
 * implements them in src/store/; others code against these so a fake can stand in for tests.
 */
import type { Finding, Severity } from '../model/finding';

export interface FindingsQuery {
  /** Inclusive lower bound on finding time, epoch ms. */
  sinceMs?: number;
  /** Exclusive upper bound on finding time, epoch ms. */
  untilMs?: number;
  minSeverity?: Severity;
  rule?: string;
  /** Container id or a unique prefix of it. */
  container?: string;
  host?: string;
  limit?: number;
}

/**
 * The outbox is the findings table read through one cursor per output: a finding is pending for an
 * output while its sequence number is above that output's acknowledged cursor. Nothing is removed
 * from it except by retention, so a down receiver never loses findings.
 */
export interface OutboxReader {
  /** Oldest pending findings for this output, in commit order. */
  pending(output: string, limit: number): { seq: number; finding: Finding }[];
  /** Everything up to and including seq was delivered to this output. */
  ack(output: string, seq: number): void;
  /** How many findings are waiting for this output. */
  depth(output: string): number;
}

/** Small durable key/value state (source offsets, last ship time, status snapshots). */
export interface StateStore {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
}
