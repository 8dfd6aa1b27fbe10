/** The one log line the agent writes per finding: ids and the (redacted) rule title, never argv or evidence. */
import type { Finding } from '../detect/finding';
import type { Logger } from './logger';

export function logFinding(logger: Logger, f: Finding): void {
  logger.info(
    { finding: f.id, revision: f.revision ?? 1, rules: f.rules ?? [f.rule], count: f.count ?? 1, severity: f.severity, pid: f.process?.pid ?? null, container: f.container?.id ?? null },
    f.title,
  );
}
