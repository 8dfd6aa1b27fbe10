/**
 * Argv redaction by structure: walk the arguments once, knowing which program is running (argv0 and
 * any program a wrapper such as env/sudo/sshpass starts), and classify each flag. A flag that names a
 * secret takes the secret with it whether the value is attached (`--token=X`, `-pX`) or the next,
 * separate argument (`--token X`, `sshpass -p X`). Every argument then goes through the text rules.
 */
import { REDACTED } from './marker';
import { COOKIE_FLAGS, OPENSSL_PASS_FLAGS, SHORT_SECRET_FLAGS, USERPASS_FLAGS, isSecretLongFlag } from './secret-names';

/** The text pass for one argument; `index` is its place in argv. */
type TextRedactor = (s: string, index: number) => string;

/** What the next argument is, given the flag before it. */
type Pending = 'secret' | 'userpass' | 'openssl-pass' | 'cookie' | null;

const PATH_MAX = 4096;

/** The program an argument names: its last path part, after any `q=` (a command inside a query). */
function basename(a: string): string {
  const slash = a.lastIndexOf('/');
  const base = slash >= 0 ? a.slice(slash + 1) : a;
  const eq = base.lastIndexOf('=');
  return eq >= 0 ? base.slice(eq + 1) : base;
}

/** `user:password` → `user:[REDACTED]`; a value without a colon is a user name (curl prompts). */
function redactUserPass(v: string): string {
  const colon = v.indexOf(':');
  return colon < 0 ? v : `${v.slice(0, colon + 1)}${REDACTED}`;
}

function redactOpensslPass(v: string): string {
  return v.startsWith('pass:') ? `pass:${REDACTED}` : v.startsWith('env:') || v.startsWith('file:') || v.startsWith('fd:') ? v : REDACTED;
}

function applyPending(p: Exclude<Pending, null>, v: string): string {
  if (v === REDACTED) return v;
  switch (p) {
    case 'secret':
      return REDACTED;
    case 'userpass':
      return redactUserPass(v);
    case 'openssl-pass':
      return redactOpensslPass(v);
    case 'cookie':
      return v.includes('=') ? REDACTED : v;
  }
}

/**
 * Redacts an argument vector. `text` is the per-argument text pass (headers, URLs, NAME=VALUE, token
 * shapes); it runs on every argument this walk did not already replace whole.
 */
export function redactArgvWith(argv: readonly string[], text: TextRedactor): string[] {
  const out = new Array<string>(argv.length);
  let program = basename(argv[0] ?? '');
  let subcommandSeen = false;
  let pending: Pending = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (pending !== null) {
      out[i] = text(applyPending(pending, a), i);
      pending = null;
      continue;
    }
    const short = SHORT_SECRET_FLAGS.get(program);
    if (i > 0 && !a.startsWith('-')) {
      // A known program named as an argument is the program from here on (env X=1 mysql, sudo redis-cli).
      // No program path is longer than PATH_MAX: a 120 KB argument is not scanned for a name.
      const b = a.length > PATH_MAX ? '' : basename(a);
      if (SHORT_SECRET_FLAGS.has(b) || USERPASS_FLAGS.has(b) || b === 'openssl') {
        program = b;
        subcommandSeen = false;
      } else if (short?.subcommand !== undefined && a === short.subcommand) subcommandSeen = true;
      out[i] = text(a, i);
      continue;
    }
    out[i] = text(redactFlag(a, program, short, subcommandSeen, (p) => (pending = p)), i);
  }
  return out;
}

function redactFlag(
  a: string,
  program: string,
  short: ReturnType<typeof SHORT_SECRET_FLAGS.get>,
  subcommandSeen: boolean,
  setPending: (p: Pending) => void,
): string {
  if (a.startsWith('--')) {
    const eq = a.indexOf('=');
    const flag = eq >= 0 ? a.slice(0, eq) : a;
    if (USERPASS_FLAGS.get(program)?.has(flag)) {
      if (eq < 0) setPending('userpass');
      return eq < 0 ? a : `${flag}=${redactUserPass(a.slice(eq + 1))}`;
    }
    if (program === 'curl' && COOKIE_FLAGS.has(flag)) {
      if (eq < 0) setPending('cookie');
      return eq < 0 ? a : `${flag}=${applyPending('cookie', a.slice(eq + 1))}`;
    }
    if (!isSecretLongFlag(flag)) return a;
    if (eq < 0) {
      setPending('secret');
      return a;
    }
    return eq === a.length - 1 ? a : `${flag}=${REDACTED}`;
  }
  // Short flags: only a program's own secret flags, since -p is a port for one and a password for another.
  if (program === 'openssl' && OPENSSL_PASS_FLAGS.has(a)) {
    setPending('openssl-pass');
    return a;
  }
  const two = a.slice(0, 2);
  if (USERPASS_FLAGS.get(program)?.has(two)) {
    if (a.length === 2) setPending('userpass');
    return a.length === 2 ? a : `${two}${redactUserPass(a.slice(2))}`;
  }
  if (program === 'curl' && COOKIE_FLAGS.has(two)) {
    if (a.length === 2) setPending('cookie');
    return a.length === 2 ? a : `${two}${applyPending('cookie', a.slice(2))}`;
  }
  if (short === undefined || (short.subcommand !== undefined && !subcommandSeen)) return a;
  if (short.separate.has(two) || short.attachedOnly.has(two)) {
    if (a.length > 2) return `${two}${REDACTED}`;
    if (short.separate.has(two)) setPending('secret');
  }
  return a;
}
