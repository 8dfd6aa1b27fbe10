/**
 * Transparent gzip for recorded logs (`credwatch replay`): rotated audit logs are often `.gz`, and a
 * name says nothing about content, so the format is decided by the gzip magic bytes (1f 8b) of the
 * first chunk. Decompression streams (zlib), so a file of any size, or a highly compressed one, is
 * read in bounded memory like a plain log.
 */
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';

const GZIP_MAGIC_0 = 0x1f;
const GZIP_MAGIC_1 = 0x8b;

export function isGzipHead(head: Buffer): boolean {
  return head.length >= 2 && head[0] === GZIP_MAGIC_0 && head[1] === GZIP_MAGIC_1;
}

/** The first chunk of a stream, put back so the reader that follows sees every byte. Empty at end. */
export function peekStream(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const onReadable = (): void => {
      const chunk = stream.read() as Buffer | string | null;
      cleanup();
      if (chunk === null) return resolve(Buffer.alloc(0));
      const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      stream.unshift(buf);
      resolve(buf);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.alloc(0));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const cleanup = (): void => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
    };
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('error', onError);
  });
}

/**
 * `input` itself, or its gunzipped content when it starts with the gzip magic. A corrupt or truncated
 * gzip stream fails the returned stream with zlib's error ("unexpected end of file", ...), which the
 * reader reports: it is never taken for an unparsable plain log.
 */
export async function maybeGunzip(input: Readable): Promise<Readable> {
  const head = await peekStream(input);
  if (!isGzipHead(head)) return input;
  const gunzip = createGunzip();
  input.on('error', (err) => gunzip.destroy(err));
  return input.pipe(gunzip);
}
