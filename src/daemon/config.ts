/**
 * Loads and validates the agent's YAML configuration.
 *
 * - No file at the default path: built-in defaults (a node needs no config to be useful). A path given
 *   explicitly that does not exist is an error: the operator meant something.
 * - Errors carry FILE:LINE:COLUMN, the key path and what was expected (ConfigError, exit 2).
 * - Secrets need not sit in the file: a ship output's token comes from `token_env: VAR` or from
 *   CREDWATCH_SHIP_<NAME>_TOKEN. A file that does hold a secret literal must not be world-readable.
 */
import * as fs from 'node:fs';
import { LineCounter, parseDocument, isMap, isScalar, isSeq, isPair, type Document } from 'yaml';
import { configSchema, DEFAULT_CONFIG_PATH, parseListenAddress, type Config } from './config-schema';
import { encodeRule, ruleKey } from '../audit/rules';
import { isOurRule, OUR_KEY_PREFIX } from './audit-lifecycle';
import { ConfigError, locate, yamlSyntaxProblems, zodProblems, type ConfigProblem } from './config-errors';

export type { Config } from './config-schema';
export { ConfigError, formatProblems, type ConfigProblem } from './config-errors';
export { DEFAULT_CONFIG_PATH, parseListenAddress } from './config-schema';

/** Keys whose string values are secrets: never logged, and refused in a world-readable file. */
const SECRET_KEYS = new Set(['token', 'password', 'api_key', 'secret']);

export const BUILTIN_DEFAULTS_SOURCE = '(built-in defaults)';

type Env = Record<string, string | undefined>;

/** Env var that overrides the token of the ship output called `name`: CREDWATCH_SHIP_<NAME>_TOKEN. */
export function shipTokenEnvName(name: string): string {
  return `CREDWATCH_SHIP_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_TOKEN`;
}

interface Parsed {
  doc: Document;
  lc: LineCounter;
  raw: unknown;
}

function parseYaml(text: string, sourceName: string): Parsed {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) throw new ConfigError(sourceName, yamlSyntaxProblems(doc));
  const raw: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(sourceName, [{ path: '', ...locate(doc, lc, []), message: 'expected a mapping of keys at the top level' }]);
  }
  return { doc, lc, raw };
}

/**
 * Fills ship output tokens from the environment before validation (so a schema that requires a token
 * is satisfied by one from the environment). `token_env` is consumed here: the validated output holds
 * `token` only.
 */
function resolveShipTokens(parsed: Parsed, env: Env): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const ship = (parsed.raw as Record<string, unknown>).ship;
  if (!Array.isArray(ship)) return problems;
  ship.forEach((output: unknown, i) => {
    if (typeof output !== 'object' || output === null || Array.isArray(output)) return;
    const o = output as Record<string, unknown>;
    if ('token_env' in o) {
      if ('token' in o) {
        problems.push({ path: `ship[${i}].token_env`, ...locate(parsed.doc, parsed.lc, ['ship', i, 'token_env']), message: 'give token or token_env, not both' });
        return;
      }
      const varName = o.token_env;
      if (typeof varName !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(varName)) {
        problems.push({ path: `ship[${i}].token_env`, ...locate(parsed.doc, parsed.lc, ['ship', i, 'token_env']), message: 'expected the name of an environment variable' });
        return;
      }
      const value = env[varName];
      if (value === undefined || value === '') {
        // An error for `config check` as for `run`: a check that passes must mean run starts. From a
        // shell, check with the service's environment (README: "Install as a service").
        problems.push({
          path: `ship[${i}].token_env`,
          ...locate(parsed.doc, parsed.lc, ['ship', i, 'token_env']),
          message: `environment variable ${varName} is not set (it should hold this output's token)`,
        });
        return;
      }
      delete o.token_env;
      o.token = value;
      return;
    }
    if (typeof o.name === 'string') {
      const value = env[shipTokenEnvName(o.name)];
      if (value !== undefined && value !== '') o.token = value;
    }
  });
  return problems;
}

/** Key paths of secret literals written in the file itself (not from the environment). */
function secretLiteralPaths(doc: Document): (string | number)[][] {
  const found: (string | number)[][] = [];
  const walk = (node: unknown, path: (string | number)[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair) || !isScalar(pair.key)) continue;
        const key = String(pair.key.value);
        if (SECRET_KEYS.has(key) && isScalar(pair.value) && typeof pair.value.value === 'string' && pair.value.value !== '') {
          found.push([...path, key]);
        } else walk(pair.value, [...path, key]);
      }
    } else if (isSeq(node)) node.items.forEach((item, i) => walk(item, [...path, i]));
  };
  walk(doc.contents, []);
  return found;
}

/** `scheme://user:password@host`: a password written into a URL. */
const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i;

/** Paths of string values that are URLs carrying a password. */
function urlPasswordPaths(doc: Document): (string | number)[][] {
  const found: (string | number)[][] = [];
  const walk = (node: unknown, path: (string | number)[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) if (isPair(pair) && isScalar(pair.key)) walk(pair.value, [...path, String(pair.key.value)]);
    } else if (isSeq(node)) node.items.forEach((item, i) => walk(item, [...path, i]));
    else if (isScalar(node) && typeof node.value === 'string' && URL_WITH_PASSWORD.test(node.value)) found.push(path);
  };
  walk(doc.contents, []);
  return found;
}

function validate(parsed: Parsed, sourceName: string, env: Env): Config {
  const tokenProblems = resolveShipTokens(parsed, env);
  const result = configSchema.safeParse(parsed.raw, { reportInput: true });
  const problems = [...tokenProblems, ...(result.success ? [] : zodProblems(result.error.issues, parsed.doc, parsed.lc, configSchema))];
  if (result.success) problems.push(...semanticProblems(result.data, parsed));
  if (problems.length > 0 || !result.success) throw new ConfigError(sourceName, problems);
  return result.data;
}

/** Checks that need the whole validated config. */
function semanticProblems(config: Config, parsed: Parsed): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  // Each output has its own outbox cursor, keyed by name: two outputs with one name would share it.
  const seen = new Map<string, number>();
  config.ship.forEach(({ name }, i) => {
    const first = seen.get(name);
    if (first !== undefined) {
      problems.push({ path: `ship[${i}].name`, ...locate(parsed.doc, parsed.lc, ['ship', i, 'name']), message: `duplicate output name "${name}" (also ship[${first}])` });
    } else seen.set(name, i);
  });
  // Explicit audit rules must encode, and carry our key (we remove rules by that key, only ours).
  if (config.audit.rules !== 'default') {
    config.audit.rules.forEach((text, i) => {
      const where = { path: `audit.rules[${i}]`, ...locate(parsed.doc, parsed.lc, ['audit', 'rules', i]) };
      let payload: Buffer;
      try {
        payload = encodeRule(text);
      } catch (err) {
        problems.push({ ...where, message: `not a valid audit rule: ${(err as Error).message}` });
        return;
      }
      if (!isOurRule(ruleKey(payload))) problems.push({ ...where, message: `needs a key starting with "${OUR_KEY_PREFIX}" (add -k ${OUR_KEY_PREFIX}:<name>)` });
    });
  }
  return problems;
}

/** Parses and validates configuration text. `sourceName` is used in error messages. */
export function parseConfigText(text: string, sourceName: string, env: Env = process.env): Config {
  return validate(parseYaml(text, sourceName), sourceName, env);
}

/** The configuration with every key at its default. */
export function defaultConfig(): Config {
  return configSchema.parse({});
}

export interface LoadedConfig {
  config: Config;
  /** The file read, or BUILTIN_DEFAULTS_SOURCE. */
  source: string;
}

/**
 * Reads the configuration file. Without `path`, a missing DEFAULT_CONFIG_PATH means built-in defaults.
 * Refuses a group- or world-writable file (whoever can write it controls a root daemon) and a file
 * readable by group or others that holds a secret literal (a token/password key, or user:pass@ in a URL).
 */
export function loadConfig(path?: string, env: Env = process.env, defaultPath: string = DEFAULT_CONFIG_PATH): LoadedConfig {
  const file = path ?? defaultPath;
  let text: string;
  let mode: number;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      mode = fs.fstatSync(fd).mode;
      text = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && path === undefined) return { config: defaultConfig(), source: BUILTIN_DEFAULTS_SOURCE };
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new ConfigError(file, [{ path: '', message: `cannot read configuration: ${why}` }]);
  }
  if ((mode & 0o022) !== 0) {
    throw new ConfigError(file, [
      { path: '', message: `refusing a group- or world-writable configuration file (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); run: chmod go-w ${file}` },
    ]);
  }
  const parsed = parseYaml(text, file);
  // A secret literal needs a file only its owner can read: group read (0640) hands the token to every
  // member of the group, so 0600 (or 0400) it is.
  if ((mode & 0o077) !== 0) {
    const secrets = [...secretLiteralPaths(parsed.doc), ...urlPasswordPaths(parsed.doc)];
    if (secrets.length > 0) {
      throw new ConfigError(
        file,
        secrets.map((p) => ({
          path: p.map((s) => (typeof s === 'number' ? `[${s}]` : s)).join('.').replace(/\.\[/g, '['),
          ...locate(parsed.doc, parsed.lc, p),
          message: `this file holds a secret and is readable by group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); run: chmod 600 ${file}, or take the secret from the environment (token_env: VAR, or CREDWATCH_SHIP_<NAME>_TOKEN; no user:password in URLs)`,
        })),
      );
    }
  }
  return { config: validate(parsed, file, env), source: file };
}

/** Short human summary for `credwatch config check` (never prints secrets). */
export function summarizeConfig(config: Config): string[] {
  const listen = parseListenAddress(config.metrics.listen);
  const rules = config.audit.rules === 'default' ? 'default (from the detection rules)' : `${config.audit.rules.length} explicit`;
  const allow = config.detections.allow;
  const allowCount = Object.values(allow).reduce((n, list) => n + list.length, 0);
  const tokenOf = (o: Config['ship'][number]): string => (o.token !== undefined ? 'set' : o.token_env !== undefined ? `from $${o.token_env}` : 'none');
  const outputs = config.ship.map((o) => `${o.name} (${o.type} ${o.url}, token ${tokenOf(o)})`);
  return [
    `storage: ${config.storage.path}, retention ${config.storage.retention_days} days, max ${config.storage.max_mb} MB`,
    `audit: mode ${config.audit.mode}, backlog_limit ${config.audit.backlog_limit}` +
      (config.audit.backlog_wait_time !== undefined ? `, backlog_wait_time ${config.audit.backlog_wait_time}` : '') +
      `, rules ${rules}`,
    `detections: rules_dir ${config.detections.rules_dir ?? '(built-in only)'}, ${allowCount} allow entries`,
    `ship: ${outputs.length === 0 ? 'none' : outputs.join(', ')}`,
    `kube_audit: ${config.kube_audit.length === 0 ? 'none' : config.kube_audit.map((k) => k.path ?? `webhook https://${k.webhook!.listen}${k.webhook!.path}`).join(', ')}`,
    `metrics: ${listen ? `http://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}/metrics` : 'off'}`,
    `log: level ${config.log.level}`,
  ];
}
