/**
 * PROCTITLE: the process's command line as the kernel reads it from its memory, NUL-separated and
 * cut at 128 bytes. Written as hex (it contains NULs) or, when it is one printable word, quoted.
 * Note the cut can fall inside a multi-byte UTF-8 character: the dangling bytes are kept
 * (surrogate-escaped), not dropped.
 */
import { decodeHex, decodeSurrogateEscaped } from './bytes';

export interface Proctitle {
  /** Arguments joined by spaces (what ps shows). */
  title: string;
  /** The NUL-separated parts (a trailing empty part from a trailing NUL is dropped). */
  parts: string[];
}

/**
 * The last hex value decoded and its result: in an alert storm (1,000 forks a second of one program)
 * every event carries the same PROCTITLE, so it is decoded once. Callers get a copy of `parts`.
 */
let lastHex = '';
let lastDecoded: Proctitle | null = null;

/** Decodes the `proctitle=` value `text[start, end)`. `quoted` when it was written as "...". */
export function decodeProctitle(text: string, start: number, end: number, quoted: boolean): Proctitle | null {
  if (quoted) {
    const title = text.slice(start, end);
    return { title, parts: [title] };
  }
  const hex = text.slice(start, end);
  if (lastDecoded === null || hex !== lastHex) {
    const out = decodeHexProctitle(text, start, end);
    if (out === null) return null;
    lastHex = hex;
    lastDecoded = out;
  }
  return { title: lastDecoded.title, parts: [...lastDecoded.parts] };
}

function decodeHexProctitle(text: string, start: number, end: number): Proctitle | null {
  const bytes = decodeHex(text, start, end);
  if (bytes === null) return null;
  const parts: string[] = [];
  let from = 0;
  for (;;) {
    const nul = bytes.indexOf(0, from);
    if (nul < 0) {
      if (from < bytes.length) parts.push(decodeSurrogateEscaped(bytes, from, bytes.length));
      break;
    }
    parts.push(decodeSurrogateEscaped(bytes, from, nul));
    from = nul + 1;
  }
  return { title: parts.join(' '), parts };
}
