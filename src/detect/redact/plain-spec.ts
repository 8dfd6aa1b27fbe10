/**
 * Text that redaction certainly leaves as it is, described for native code: `replay --events` prints
 * most events from C++ (native/replay_events.cc) and may do so only when redactAuditEvent would not
 * change a field. The description is conservative — a string is "plain" when it is printable ASCII,
 * holds none of `unsafeChars`, does not open JSON, holds no token shape, and, when it holds a space
 * (command text, walked as argv), neither names a program with secret short flags nor holds a long
 * flag with a secret word. An argv is plain when every argument is, no `--flag` holds a secret word
 * (its value would be redacted) and no argument's basename is a program with secret short flags.
 * Anything else goes through ./event.ts in TypeScript.
 *
 * Why each list covers the rules of ./text.ts and ./argv.ts:
 *  - unsafeChars: every named-value rule needs `:` (headers, `scheme://user:pass@`, `pass:`), `=` or
 *    `%3D` (NAME=value), `"` (JSON), and the decoded layers need `%`; `\` only appears in escaped JSON;
 *  - shapeWords: the token shapes (JWT, AKIA/ASIA, Vault, GitHub, GitLab, Slack, bearer) and PEM keys;
 *  - secretWords: isSecretLongFlag needs one of these in the flag (SECRET_WORD, bearer, pass);
 *  - programHints: PROGRAM_HINT, the programs whose flags command text is walked for;
 *  - programs: SHORT_SECRET_FLAGS, USERPASS_FLAGS and openssl, where argv walking changes a flag.
 * test/unit/detect/redact-plain-spec.test.ts holds the native predicate against redactText.
 */
import { SHORT_SECRET_FLAGS, USERPASS_FLAGS } from './secret-names';

export interface PlainTextSpec {
  unsafeChars: string;
  shapeWords: string[];
  secretWords: string[];
  programHints: string[];
  programs: string[];
}

export const PLAIN_TEXT_SPEC: PlainTextSpec = {
  unsafeChars: ':="%\\',
  shapeWords: [
    'eyj',
    'akia',
    'asia',
    'hvs.',
    'hvb.',
    'hvr.',
    'ghp_',
    'gho_',
    'ghu_',
    'ghs_',
    'ghr_',
    'github_pat',
    'glpat-',
    'xoxa-',
    'xoxb-',
    'xoxp-',
    'xoxr-',
    'xoxs-',
    'bearer',
    'private',
  ],
  secretWords: ['pass', 'pwd', 'secret', 'token', 'key', 'auth', 'credential', 'cookie', 'session', 'bearer'],
  programHints: ['mysql', 'mariadb', 'sshpass', 'redis-cli', 'mongo', 'ldap', 'az', 'login', 'curl', 'openssl', '-u', '-b'],
  programs: [...new Set([...SHORT_SECRET_FLAGS.keys(), ...USERPASS_FLAGS.keys(), 'openssl'])],
};
