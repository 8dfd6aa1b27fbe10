/**
 * The kernel's `struct audit_rule_data` (linux/audit.h), built from auditctl rule text and read back.
 *
 * The goal is byte-for-byte agreement with Debian's auditctl (3.0.9): the same rule text must produce
 * the same AUDIT_ADD_RULE payload, so that the kernel's rule list and `auditctl -l` look exactly as if
 * an operator had typed the rule, and so that AUDIT_DEL_RULE with our payload removes exactly our rule.
 * Parsing follows auditctl's setopt()/libaudit's audit_rule_fieldpair_data(). Checked against the
 * real auditctl and kernel in test/integration/rules and against go-libaudit's recorded payloads in
 * test/unit/rules. Where we knowingly differ from auditctl 3.0.9:
 *  - stricter: a number with trailing junk (`pid=12x`), an unparsable `sessionid=`, a value beyond 32
 *    bits, and `exe!=` (3.0.9 accepts it but lists it as `exe=`) are RuleSyntaxErrors, not silently
 *    rewritten;
 *  - more lenient: kernel-header syscall spellings libaudit lacks (`pread64`, i386 `kexec_load`) are
 *    accepted beside libaudit's; rule text may quote ('...', "...") and backslash-escape blanks;
 *  - io_uring (AUDIT_FILTER_URING_EXIT, list 7): Debian's auditctl 3.0.9 is built without it ("bad
 *    keyword always,io_uring"), so those rules are checked against the kernel's own read-back
 *    (test/integration/rules/uring-rules.test.ts): `-S` takes io_uring op names (src/audit/uring-ops.ts),
 *    `-F arch` is refused (op numbers do not depend on the arch);
 *  - out of scope: -d/-D/-W/-e and the other control options, filesystem `fstype=`,
 *    machines other than x86_64/i386 (syscall names need one of those two tables).
 *
 * Split like go-libaudit's rule package: text.ts parses rule text, wire.ts is the payload codec (the
 * only owner of the layout), format.ts prints as `auditctl -l`; types.ts and vocabulary.ts are shared.
 */
export { uringWatchRule } from './builders';
export { systemRuleEnvironment } from './environment';
export { formatRule } from './format';
export { parseRuleText } from './text';
export { RuleDecodeError, RuleSyntaxError } from './types';
export type { Machine, RuleAction, RuleEnvironment, RuleField, RuleList, RuleOperator, RuleSpec } from './types';
export { AUDIT_RULE_HEADER_SIZE, decodeRule, encodeRule, ruleKey, rulePidField, toKernelForm, withPrepend } from './wire';
