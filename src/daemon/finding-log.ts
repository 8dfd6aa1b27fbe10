/** The one log line the agent writes per finding: ids and the (redacted) rule title, never argv or evidence. */
import type { Finding } from '../model/finding';
import type { Logger } from './logger';

export function logFinding(logger: Logger, f: Finding): void {
  logger.info(
    { finding: f.id, revision: f.revision ?? 1, rules: f.rules ?? [f.rule], count: f.count ?? 1, severity: f.severity, pid: f.process?.pid ?? null, container: f.container?.id ?? null },
    f.title,
  );
}

/**
 * Logs a finding when it is news for someone reading the log: its first revision, or a revision that
 * brings a new rule or a higher severity. A revision that only counts more of the same (an alert storm's
 * repeats, about one a second per incident) is in the store, the metrics and every output, not in the
 * log: at 1,000 repeats a second the log would otherwise be the storm's biggest cost after the reader.
 * What was last logged is remembered for `maxTracked` incidents (oldest forgotten first; a forgotten
 * incident's next revision is logged again).
 */
export class FindingLog {
  private readonly logged = new Map<string, string>();

  constructor(
    private readonly logger: Logger,
    private readonly maxTracked = 4096,
  ) {}

  log(f: Finding): void {
    const shape = `${f.severity}\0${(f.rules ?? [f.rule]).length}`;
    const had = this.logged.get(f.id);
    if (had === shape && (f.revision ?? 1) > 1) return;
    this.logged.delete(f.id);
    this.logged.set(f.id, shape);
    if (this.logged.size > this.maxTracked) this.logged.delete(this.logged.keys().next().value as string);
    logFinding(this.logger, f);
  }
}
