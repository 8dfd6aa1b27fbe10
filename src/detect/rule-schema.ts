/**
 * The host rule file format (src/detect/rules/*.yaml), validated with zod. A file is
 * `{ rules: [Rule, ...] }`. Keys are snake_case because operators write them by hand.
 *
 * A rule fires on one audit event when at least one `anchor` indicator matched, the summed weights of
 * matched indicators reach `threshold`, and no exclusion (nor the operator allowlist) matches.
 * A rule with `sequence` instead joins a finding of one of its `after` rules with a later event.
 */
import { z } from 'zod';
import { SEVERITIES } from '../model/finding';
import { OBJECT_CLASSES } from '../enrich/watched-objects';
import { compileRegex } from './linear-regex';

export { compileRegex } from './linear-regex';

/** A regex source; `(?i)` at the start means case-insensitive (JS has no inline flags). */
export const regexSource = z.string().min(1).superRefine((src, ctx) => {
  try {
    compileRegex(src);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const globList = z.array(z.string().min(1)).min(1);
const intList = z.array(z.number().int().nonnegative()).min(1);

export const sockaddrSpec = z.strictObject({
  family: z.enum(['unix', 'inet', 'inet6', 'ip']).optional(),
  port: z.array(z.number().int().min(0).max(65535)).min(1).optional(),
  addr: regexSource.optional(),
  path: regexSource.optional(),
});

/** Conditions on one event; all given conditions must hold (lists are any-of). */
const matchFields = z.strictObject({
  /** Event kind: exec (execve/execveat), open (open family), connect, or any. */
  event: z.enum(['exec', 'open', 'connect', 'any']).default('any'),
  /** Real executable: globs on the full path when they hold '/', else on the basename. */
  exe: globList.optional(),
  /** Program name: the exe basename OR argv[0]'s basename (catches re-exec under another argv0). */
  program: globList.optional(),
  not_program: globList.optional(),
  /** Regex over the command line: argv joined by spaces, argv[0] reduced to its basename. */
  argv: regexSource.optional(),
  /** Further regexes that must all match the command line too. */
  argv_all: z.array(regexSource).min(1).optional(),
  /**
   * The command line is longer than the regexes read (MAX_MATCH_TEXT: they see its two ends), so
   * whatever was put in its middle was not matched: padding is the way round an argv rule.
   */
  argv_cut: z.literal(true).optional(),
  /** Regex over each PATH name and its CWD-resolved form; any match counts. */
  path: regexSource.optional(),
  cwd: regexSource.optional(),
  /**
   * The event hit one of our watches on an object of these classes (from the watch key and the
   * PATH inode/device, not from the name used): pod-token, pod-secret, node-credential, runtime-state.
   */
  object: z.array(z.enum(OBJECT_CLASSES)).min(1).optional(),
  /** A /proc/<pid>/environ opened or named belongs to a process in a container other than the reader's. */
  environ_of_other_container: z.literal(true).optional(),
  /** The reader is (true) or is not (false) outside the watched object's pod or container. */
  object_foreign: z.boolean().optional(),
  /** Regex over the full exe path (e.g. binaries run from /tmp). */
  exe_path: regexSource.optional(),
  syscall: z.array(z.string().min(1)).min(1).optional(),
  success: z.boolean().optional(),
  sockaddr: sockaddrSpec.optional(),
  /** The process runs in a container (known from its cgroup or runtime ancestry). */
  container: z.boolean().optional(),
  /** A person at a terminal: tty and a real auid. */
  interactive: z.boolean().optional(),
  /**
   * The program is new among the readers of credentials in this container (another program read
   * them first). Stateful: put it in an indicator whose other conditions select the reads to learn from.
   */
  novel_reader: z.literal(true).optional(),
  /** Any known ancestor's program (exe basename or argv0 basename) matches. */
  parent_program: globList.optional(),
  /** Any known ancestor's command line matches. */
  parent_argv: regexSource.optional(),
  uid: intList.optional(),
  auid: intList.optional(),
  /** Match only events with no auid (unset), e.g. commands run by runtimes (kubectl exec). */
  auid_unset: z.boolean().optional(),
});

export const matchSpec = matchFields.extend({
  /**
   * At least one of these (each a set of conditions, `event` ignored) must hold too: one indicator
   * for "the token, named by its path OR identified as the watched object", so that an event
   * matching both is not counted twice.
   */
  any_of: z.array(matchFields.omit({ event: true })).min(1).optional(),
});
export type MatchSpec = z.infer<typeof matchSpec>;

export const exclusionSpec = matchSpec.extend({
  container_id: globList.optional(),
  container_image: globList.optional(),
  namespace: globList.optional(),
  /** Why this exclusion exists (shown by `rules list --json`). */
  reason: z.string().optional(),
});
export type ExclusionSpec = z.infer<typeof exclusionSpec>;

export const indicatorSpec = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'indicator ids are lower-case words joined by - or _'),
  weight: z.number().int().min(1).max(10).default(1),
  /** At least one anchor indicator must match for the rule to fire. */
  anchor: z.boolean().default(false),
  match: matchSpec,
});
export type IndicatorSpec = z.infer<typeof indicatorSpec>;

const severity = z.enum(SEVERITIES);

export const sequenceSpec = z.strictObject({
  /** Rule ids whose findings start the sequence. */
  after: z.array(z.string().min(1)).min(1),
  /** The follow-up event: any of these. */
  then: z.array(matchSpec).min(1),
  window_s: z.number().positive().max(3600).default(60),
  /** How the two events are tied: same process tree (shared ancestor) and/or same container. */
  join: z.array(z.enum(['process_tree', 'container'])).min(1).default(['process_tree', 'container']),
});

export const ruleSpec = z
  .strictObject({
    id: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'rule ids are lower-case words joined by - _ or .'),
    title: z.string().min(1),
    description: z.string().min(1),
    severity,
    confidence: z.enum(['low', 'medium', 'high']),
    mitre: z.array(z.string().regex(/^T\d{4}(\.\d{3})?$/, 'MITRE ids look like T1552 or T1552.007')).min(1),
    covers: z.array(z.string().regex(/^[HK]\d{1,2}$/, 'covers names DETECTIONS.md rows like H1')).min(1),
    enabled: z.boolean().default(true),
    indicators: z.array(indicatorSpec).default([]),
    threshold: z.number().int().min(1).default(1),
    /** Raise the severity when the score reaches a level. */
    escalate: z.array(z.strictObject({ score: z.number().int().min(1), severity })).default([]),
    exclusions: z.array(exclusionSpec).default([]),
    /** auditctl-syntax lines this rule needs; keys must start with `credwatch:`. */
    audit_rules: z
      .array(
        z
          .string()
          .regex(/^-[aw] /, 'audit rules start with -a or -w')
          .refine((s) => /-k credwatch:[a-z0-9_-]+\s*$/.test(s) || /-F key=credwatch:[a-z0-9_-]+\s*$/.test(s), 'audit rules must end with -k credwatch:<name>'),
      )
      .default([]),
    sequence: sequenceSpec.optional(),
  })
  .superRefine((r, ctx) => {
    if (!r.sequence && r.indicators.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['indicators'], message: 'a rule needs indicators or a sequence' });
    }
    if (r.indicators.length > 0 && !r.indicators.some((i) => i.anchor)) {
      ctx.addIssue({ code: 'custom', path: ['indicators'], message: 'at least one indicator must have anchor: true' });
    }
    const ids = new Set<string>();
    r.indicators.forEach((ind, i) => {
      if (ids.has(ind.id)) ctx.addIssue({ code: 'custom', path: ['indicators', i, 'id'], message: `duplicate indicator id "${ind.id}"` });
      ids.add(ind.id);
    });
    const max = r.indicators.reduce((s, i) => s + i.weight, 0);
    if (r.indicators.length > 0 && r.threshold > max) {
      ctx.addIssue({ code: 'custom', path: ['threshold'], message: `threshold ${r.threshold} can never be reached (weights add up to ${max})` });
    }
  });
export type RuleSpec = z.infer<typeof ruleSpec>;

export const ruleFileSpec = z.strictObject({ rules: z.array(ruleSpec).min(1) });
