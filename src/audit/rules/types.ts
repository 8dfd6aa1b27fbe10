/** The rule model every part of src/audit/rules/ speaks: one auditctl rule as data. */


export type RuleList = 'user' | 'task' | 'exit' | 'exclude' | 'filesystem' | 'io_uring';
export type RuleAction = 'never' | 'always';
export type RuleOperator = '=' | '!=' | '<' | '>' | '<=' | '>=' | '&' | '&=';

export interface RuleField {
  /** auditctl's field name (`auid`, `path`, `key`, ...); `f<id>` for an id we have no name for. */
  readonly name: string;
  readonly op: RuleOperator;
  /** u32 for numeric fields (so `auid!=unset` is 4294967295); the text for string fields. A key
   * field holds all of a rule's keys joined with \x01, as auditctl sends them. */
  readonly value: number | string;
}

export interface RuleSpec {
  readonly list: RuleList;
  readonly action: RuleAction;
  /** `-A`: insert at the head of the list (AUDIT_FILTER_PREPEND). */
  readonly prepend: boolean;
  /** `all`, or the syscall numbers (of the rule's arch) whose mask bits are set, ascending. */
  readonly syscalls: 'all' | readonly number[];
  /** In wire order; auditctl puts keys last. */
  readonly fields: readonly RuleField[];
}

/** Bad rule text: names the offending token and its 0-based column in the rule. */
export class RuleSyntaxError extends Error {
  override readonly name = 'RuleSyntaxError';
  constructor(
    readonly reason: string,
    readonly rule: string,
    readonly token: string,
    readonly position: number,
  ) {
    super(`${reason}: "${token}" at column ${position + 1} of rule: ${rule}`);
  }
}

/** A payload that is not a well-formed audit_rule_data. */
export class RuleDecodeError extends Error {
  override readonly name = 'RuleDecodeError';
}

/** What parsing may look up on the host (a seam so tests need not depend on this machine). */
export interface RuleEnvironment {
  /** auditctl stats a watched path: a directory becomes `dir=`, anything else `path=`. */
  isDirectory(path: string): boolean;
  userId(name: string): number | undefined;
  groupId(name: string): number | undefined;
  /** The machine whose syscall table applies when a rule names syscalls without `-F arch=`. */
  readonly machine: Machine;
}

export type Machine = 'x86_64' | 'i386';
