/** Types of collector-fleet.cjs (collector replicas and simulated agents on one machine). */
import type { ChildProcess } from 'node:child_process';

export interface Cert {
  certFile: string;
  keyFile: string;
  ca: string;
}
export interface FleetAgent {
  agent: string;
  token: string;
}
export interface Replica {
  proc: ChildProcess;
  pid: number;
  url: string;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}
export interface Batch {
  body: Buffer;
}
export interface AgentStats {
  acked: number;
  retries: number;
  latenciesMs: number[];
  failures: Record<string, number>;
}
export type Post = (url: string, body: Buffer, headers: Record<string, string>) => Promise<{ status: number; text: string; retryAfter?: string | string[] | undefined }>;

export function freePort(): Promise<number>;
export function selfSignedCert(dir: string): Cert;
export function fleetAgents(n: number): FleetAgent[];
export function fleetFinding(agent: string, n: number, timeMs: number): Record<string, unknown>;
export function writeReplicaConfig(o: { dir: string; name: string; port: number; cert: Cert; pgUrl: string; agents: FleetAgent[]; extra?: string }): string;
export function startReplica(o: { config: string; port: number; password: string; maxSeconds?: number; nodeArgs?: string[] }): Promise<Replica>;
export function gzipBatch(findings: object[], level?: number): Buffer;
export function runAgent(o: {
  agent: string;
  token: string;
  batches: Batch[];
  replicas: string[];
  first?: number;
  post: Post;
  onAck: (batch: number, answer: { accepted: number; replaced: number; duplicates: number }, replica: string) => void;
  shouldStop?: () => boolean;
  maxAttempts?: number;
  /** Start a batch every intervalMs (0: as fast as answered). */
  intervalMs?: number;
}): Promise<AgentStats>;
export function sha256(s: string): string;
export const BIN: string;
export const ROOT: string;
