/**
 * A file replay read and could use none of is an error (exit 1, with its counts), in both modes: a
 * report of "0 findings" or no events for a file of garbage, or of one 50 MB line, would read as "all
 * clear". A file with one good record among bad ones is not an error (the bad are counted and shown).
 */
import { RuntimeFailure } from '../errors';

/** What one file gave: records read, of which unparsable, and lines over the length limit (skipped). */
export interface FileReadCounts {
  records: number;
  unparsable: number;
  overlongLines: number;
}

export interface UnreadableFile {
  file: string;
  /** e.g. "40 unparsable records", "1 overlong line skipped", "5 bad kube audit lines". */
  what: string;
}

/** Null when something of the file was usable (or it was empty), else why nothing was. */
export function unreadable(file: string, c: FileReadCounts): UnreadableFile | null {
  if (c.records > c.unparsable) return null;
  const parts: string[] = [];
  if (c.unparsable > 0) parts.push(`${c.unparsable} unparsable record${c.unparsable === 1 ? '' : 's'}`);
  if (c.overlongLines > 0) parts.push(`${c.overlongLines} overlong line${c.overlongLines === 1 ? '' : 's'} skipped`);
  return parts.length === 0 ? null : { file, what: parts.join(', ') };
}

/** Throws the exit-1 error naming every such file; nothing when the list is empty. */
export function failOnUnreadable(files: readonly UnreadableFile[]): void {
  if (files.length === 0) return;
  throw new RuntimeFailure(files.map((u) => `${u.file}: nothing could be read (${u.what}, 0 parsed)`).join('; '));
}
