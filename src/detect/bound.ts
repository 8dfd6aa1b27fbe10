/**
 * Bounds on what a finding carries from a process's argv. A process can pass up to 2 MiB of
 * arguments (128 KiB each); a finding is stored, shipped, rendered and logged, so a hostile argv must
 * not make each of those carry megabytes. Each argument keeps its first MAX_ARG_CHARS characters and
 * gets a `…[+N bytes]` marker saying how much was cut; past MAX_ARGS arguments one marker element
 * `…[+N args]` stands for the rest. Applied after redaction, so a secret that straddles the cut was
 * already replaced whole.
 */
import { encodeSurrogateEscaped } from '../audit/bytes';

export const MAX_ARG_CHARS = 4096;
export const MAX_ARGS = 256;

function boundArg(arg: string, maxChars: number): string {
  if (arg.length <= maxChars) return arg;
  let cut = maxChars;
  // Do not split a surrogate pair.
  const c = arg.charCodeAt(cut - 1);
  if (c >= 0xd800 && c <= 0xdbff) cut--;
  const droppedBytes = encodeSurrogateEscaped(arg.slice(cut)).length;
  return `${arg.slice(0, cut)}…[+${droppedBytes} bytes]`;
}

/** argv with every argument at most `maxChars` (+ marker) and at most `maxArgs` (+ one marker) entries. */
export function boundArgv(argv: readonly string[] | null, maxChars = MAX_ARG_CHARS, maxArgs = MAX_ARGS): string[] | null {
  if (argv === null) return null;
  let changed = argv.length > maxArgs;
  for (let i = 0; i < argv.length && !changed; i++) if ((argv[i] as string).length > maxChars) changed = true;
  if (!changed) return argv as string[];
  const n = Math.min(argv.length, maxArgs);
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = boundArg(argv[i] as string, maxChars);
  if (argv.length > maxArgs) out.push(`…[+${argv.length - maxArgs} args]`);
  return out;
}
