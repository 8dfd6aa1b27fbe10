/**
 * Which names say "the value is a secret": environment variables and query/JSON keys (GITHUB_TOKEN,
 * PGPASSWORD, api_key, "auth"), header names (Authorization, X-Auth-Token, Cookie) and command-line
 * flags (--token, --client-secret). One place, so argv, text and Kubernetes objects agree.
 */

// A name is secret when one of its words is. Names are short (they are cut at 128 chars before the
// test), and the alternation has no nested quantifier.
const SECRET_WORD = /pass|pwd|secret|token|api[-_]?key|access[-_]?key|secret[-_]?key|private[-_]?key|key[-_]?data|auth|credential|cookie|session[-_]?id/i;

/** Names that contain a secret word but hold a path, a switch or a public value, not the secret. */
const NOT_SECRET = /(?:^|[-_.])(?:file|path|stdin|dir|url|uri|env|type|mode|method|plugin|provider|name|length|len)$|^author$|^(?:no-)?auth$/i;

/** Env/query/JSON key whose value is secret: MYSQL_PWD, AWS_SECRET_ACCESS_KEY, api_key, "auth". */
export function isSecretName(name: string): boolean {
  if (name.length === 0 || name.length > 128) return false;
  const n = name.replace(/^-+/, '');
  if (/^auth$/i.test(n)) return true; // docker config.json {"auth": base64(user:pass)}
  return SECRET_WORD.test(n) && !NOT_SECRET.test(n) && !/^aws[-_]access[-_]key[-_]id$/i.test(n);
}

/** Header names whose value is a credential. */
export function isSecretHeader(name: string): boolean {
  return /^(?:authorization|proxy-authorization|cookie|set-cookie)$/i.test(name) || (isSecretName(name) && !/^www-authenticate$/i.test(name));
}

/** A long flag (`--token`, `--client-secret`, `--docker-password`, `--oauth2-bearer`) naming a secret value. */
export function isSecretLongFlag(flag: string): boolean {
  if (!flag.startsWith('--') || flag.length > 130) return false;
  const name = flag.slice(2);
  return isSecretName(name) || /bearer/i.test(name) || /^pass$/i.test(name);
}

/** Programs (by basename) whose short flags take a secret: `mysql -pX`, `sshpass -p X`, `redis-cli -a X`. */
interface ShortFlags {
  /** Flags whose next argument (or attached rest) is the secret. */
  separate: ReadonlySet<string>;
  /** Flags whose secret may only be attached (`mysql -pX`; `-p` alone prompts). */
  attachedOnly: ReadonlySet<string>;
  /** Only inside this subcommand (`docker login -p`; `docker run -p` is a port). */
  subcommand?: string;
}

const MYSQL: ShortFlags = { separate: new Set(), attachedOnly: new Set(['-p']) };
const LOGIN_P: ShortFlags = { separate: new Set(['-p']), attachedOnly: new Set(), subcommand: 'login' };

export const SHORT_SECRET_FLAGS: ReadonlyMap<string, ShortFlags> = new Map<string, ShortFlags>([
  ['mysql', MYSQL],
  ['mariadb', MYSQL],
  ['mysqldump', MYSQL],
  ['mysqladmin', MYSQL],
  ['mysqlimport', MYSQL],
  ['sshpass', { separate: new Set(['-p']), attachedOnly: new Set() }],
  ['redis-cli', { separate: new Set(['-a']), attachedOnly: new Set() }],
  ['mongo', { separate: new Set(['-p']), attachedOnly: new Set() }],
  ['mongosh', { separate: new Set(['-p']), attachedOnly: new Set() }],
  ['ldapsearch', { separate: new Set(['-w']), attachedOnly: new Set() }],
  ['ldapmodify', { separate: new Set(['-w']), attachedOnly: new Set() }],
  ['ldapadd', { separate: new Set(['-w']), attachedOnly: new Set() }],
  ['az', { separate: new Set(['-p']), attachedOnly: new Set() }],
  ['docker', LOGIN_P],
  ['podman', LOGIN_P],
  ['nerdctl', LOGIN_P],
  ['buildah', LOGIN_P],
  ['skopeo', LOGIN_P],
  ['helm', { separate: new Set(['-p']), attachedOnly: new Set(), subcommand: 'login' }],
  ['oras', LOGIN_P],
  ['crane', LOGIN_P],
]);

/** curl/wget-style `user:password` values: keep the user, drop the password. */
export const USERPASS_FLAGS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['curl', new Set(['-u', '--user', '-U', '--proxy-user'])],
  ['git', new Set<string>()],
]);

/** openssl's passphrase arguments: `-passin pass:X`, `-passout pass:X`, `-pass pass:X`, `-k X`. */
export const OPENSSL_PASS_FLAGS: ReadonlySet<string> = new Set(['-passin', '-passout', '-pass', '-k']);

/** curl's cookie flag takes `name=value` (a secret) or a file name (kept). */
export const COOKIE_FLAGS: ReadonlySet<string> = new Set(['-b', '--cookie']);

/** Every program name above, so text that names one is worth tokenising. */
export const PROGRAM_HINT = /mysql|mariadb|sshpass|redis-cli|mongo|ldap|\baz\b|login|curl|openssl|-u|-b\b/;
