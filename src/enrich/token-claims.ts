/**
 * The claims of the service-account token a flagged process read, read by the agent itself.
 *
 * Which file: only one the watch index found inside a pod credential volume it watches, by the
 * (dev, inode) the kernel reported for the read (src/enrich/watched-objects.ts). Never the name the
 * reader used: that is the attacker's, and could point anywhere.
 *
 * When: once per inode. The kubelet never rewrites a token in place; it writes a new timestamped dir
 * (`..2026_...`), swaps the `..data` symlink and deletes the old dir. So a token is decoded when the
 * index first sees its inode (the watch going in, a re-index) and when refresh() sees `..data` move,
 * and its claims are kept by inode: a read of the old token reported after the swap still gets the
 * old token's claims (the previous jti), not the new one's.
 *
 * How: open(O_NOFOLLOW | O_NONBLOCK) so a symlink or FIFO planted as the last component is refused,
 * fstat the descriptor (a regular file, of the expected inode, at most maxFileBytes), read, decode the
 * claims (src/kube/token-claims.ts), zero the buffer. The directory components are the kubelet's (a
 * root-owned tmpfs, read-only in the pod), and `..data` is resolved by hand: one name starting with
 * `..`, no slash. The token text is never returned, logged or kept.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FindingToken } from '../model/finding';
import { decodeTokenClaims, type ClaimsRefusal } from '../kube/token-claims';
import { kernelDevString, type ObjectHit, type WatchedObject } from './watched-objects';

const DEFAULT_MAX_FILE_BYTES = 64 * 1024;
const DEFAULT_MAX_ENTRIES = 20_000;
const CREDENTIAL_CLASSES = new Set(['pod-token', 'pod-secret']);
/** token, azure-identity-token, eks-pod-identity-token, vault-token...: the files worth decoding. */
const TOKEN_NAME = /token/i;

/**
 * Claims as a finding carries them, made once per decoded file and frozen: every read of the file is
 * served the same object (a copy per read, `{ ...claims, from }`, took V8's slow clone path on Node 20,
 * ~1-3 us per watch hit). Nothing writes into a finding's token: a change is a new token object.
 */
type Claims = Readonly<FindingToken>;

function servedFromFile(t: Omit<FindingToken, 'from'>): Claims {
  return Object.freeze({ ...t, from: 'file' as const });
}

export interface TokenClaimsStats {
  /** Token files decoded. */
  decoded: number;
  /** Findings given claims from the cache (the common case: read once per inode). */
  served: number;
  /** Reads of a token whose inode we never decoded and whose file is gone (rotated before we saw it). */
  unknownInode: number;
  /** The file at the indexed name is now another inode (rotated between the read and ours). */
  inodeChanged: number;
  /** Files refused before decoding: not a regular file, larger than the cap, unreadable. */
  notRegular: number;
  fileTooLarge: number;
  unreadable: number;
  /** Decoding refusals (not a JWT, payload over the cap, bad base64url, bad JSON). */
  refused: Record<ClaimsRefusal, number>;
}

export interface TokenClaimsReaderOptions {
  maxFileBytes?: number;
  /** Inodes remembered at most (oldest forgotten first). */
  maxEntries?: number;
}

export class TokenClaimsReader {
  readonly stats: TokenClaimsStats = {
    decoded: 0,
    served: 0,
    unknownInode: 0,
    inodeChanged: 0,
    notRegular: 0,
    fileTooLarge: 0,
    unreadable: 0,
    refused: { 'not-jwt': 0, 'too-large': 0, 'bad-base64': 0, 'bad-json': 0 },
  };
  private readonly maxFileBytes: number;
  private readonly maxEntries: number;
  /** "dev/inode" -> claims, or null when the file there could not be decoded (not tried again). */
  private readonly byInode = new Map<string, Claims | null>();
  /** Credential volume dir -> the `..data` target last seen. */
  private readonly volumes = new Map<string, string | null>();

  constructor(opts: TokenClaimsReaderOptions = {}) {
    this.maxFileBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    this.maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
  }

  /** The watch index's hook (WatchedObjectsOptions.onIndexFile): decode a token file while it exists. */
  noteFile(inode: string, file: string, obj: WatchedObject): void {
    if (!CREDENTIAL_CLASSES.has(obj.class)) return;
    if (!this.volumes.has(obj.watch)) this.volumes.set(obj.watch, readDataLink(obj.watch));
    if (!TOKEN_NAME.test(path.basename(file)) || this.byInode.has(inode)) return;
    this.decodeFile(inode, file);
  }

  /** The claims of the token a watch hit read, or null (not a token file, or not known). */
  claimsFor(hit: ObjectHit): FindingToken | null {
    if (!CREDENTIAL_CLASSES.has(hit.class) || hit.inode === null) return null;
    let claims = this.byInode.get(hit.inode);
    if (claims === undefined) {
      if (hit.file === null || !TOKEN_NAME.test(path.basename(hit.file))) {
        if (hit.file === null) this.stats.unknownInode++;
        return null;
      }
      claims = this.decodeFile(hit.inode, hit.file);
    }
    if (!claims) return null;
    this.stats.served++;
    return claims;
  }

  /**
   * Decodes the tokens of volumes whose `..data` moved since the last look (the kubelet rotated them):
   * one readlink per volume, so it can run every few seconds.
   */
  refresh(): void {
    for (const [dir, seen] of this.volumes) {
      const now = readDataLink(dir);
      if (now === seen) continue;
      this.volumes.set(dir, now);
      if (now === null) continue;
      const data = path.join(dir, now);
      let names: string[];
      try {
        if (!fs.lstatSync(data).isDirectory()) continue;
        names = fs.readdirSync(data);
      } catch {
        continue;
      }
      for (const n of names) {
        if (!TOKEN_NAME.test(n)) continue;
        const file = path.join(data, n);
        try {
          const st = fs.lstatSync(file, { bigint: true });
          const inode = `${kernelDevString(st.dev)}/${st.ino}`;
          if (st.isFile() && !this.byInode.has(inode)) this.decodeFile(inode, file);
        } catch {
          // rotated again meanwhile
        }
      }
    }
  }

  /** Forgets a volume that is no longer watched (the pod went away); its inodes age out. */
  forgetVolume(dir: string): void {
    this.volumes.delete(dir);
  }

  get size(): number {
    return this.byInode.size;
  }

  private remember(inode: string, claims: Claims | null): void {
    this.byInode.delete(inode);
    this.byInode.set(inode, claims);
    if (this.byInode.size > this.maxEntries) this.byInode.delete(this.byInode.keys().next().value as string);
  }

  private decodeFile(inode: string, file: string): Claims | null {
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') this.stats.unknownInode++;
      else if (code === 'ELOOP') this.stats.notRegular++;
      else this.stats.unreadable++;
      return null;
    }
    let buf: Buffer | null = null;
    try {
      const st = fs.fstatSync(fd, { bigint: true });
      if (!st.isFile()) {
        this.stats.notRegular++;
        this.remember(inode, null);
        return null;
      }
      const actual = `${kernelDevString(st.dev)}/${st.ino}`;
      if (st.size > BigInt(this.maxFileBytes)) {
        this.stats.fileTooLarge++;
        this.remember(actual, null);
        return null;
      }
      buf = Buffer.alloc(Number(st.size) + 1);
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      if (n > this.maxFileBytes) {
        this.stats.fileTooLarge++; // grew after fstat
        this.remember(actual, null);
        return null;
      }
      const r = decodeTokenClaims(buf.toString('latin1', 0, n));
      const claims = r.ok ? servedFromFile(r.token) : null;
      if (r.ok) this.stats.decoded++;
      else this.stats.refused[r.reason]++;
      this.remember(actual, claims);
      if (actual !== inode) {
        // The name holds another token now: what was read is not this one. Say so, attribute nothing.
        this.stats.inodeChanged++;
        return null;
      }
      return claims;
    } catch {
      this.stats.unreadable++;
      return null;
    } finally {
      buf?.fill(0);
      fs.closeSync(fd);
    }
  }
}

/** The `..data` link target of a kubelet atomic-writer dir: one `..name`, or null. */
function readDataLink(dir: string): string | null {
  try {
    const t = fs.readlinkSync(path.join(dir, '..data'));
    return t.startsWith('..') && !t.includes('/') && t !== '..' ? t : null;
  } catch {
    return null;
  }
}
