/**
 * The only module that loads the native addon (through node-gyp-build: build/Release when built from
 * source, else prebuilds/<platform>-<arch>/). Loading is lazy so that commands which never touch the
 * kernel (replay, findings, ...) work where the addon is missing.
 *
 * Every argument is validated here before it crosses into C++ (which checks again, cheaply).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { AuditError } from './errors';
import type {
  AuditSocketOptions,
  AuditStatus,
  AuditStatusChange,
  NativeAuditSocket,
  NativeBinding,
  NativeRecord,
} from './types';

/** sizeof(struct audit_rule_data) without its variable string buffer. */
export const AUDIT_RULE_DATA_HEADER_SIZE = 4 * 3 + 4 * 64 * 4 + 4;

let loaded: NativeBinding | undefined;

/** The directory holding binding.gyp: the package root, whether we run from src/ or dist/src/. */
function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(path.join(dir, 'binding.gyp'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`credwatch: binding.gyp not found above ${__dirname}`);
    dir = parent;
  }
}

export function loadNative(): NativeBinding {
  if (loaded) return loaded;
  const requireHere = createRequire(__filename);
  const nodeGypBuild = requireHere('node-gyp-build') as (dir: string) => unknown;
  const native = nodeGypBuild(packageRoot()) as NativeBinding;
  native.setErrorClass(AuditError);
  loaded = native;
  return native;
}

const STATUS_FIELDS = ['enabled', 'failure', 'pid', 'rateLimit', 'backlogLimit', 'backlogWaitTime'] as const;

function isUint32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/**
 * Checks an AUDIT_SET request. Refuses enabled=2 (locks the audit configuration until reboot) and
 * failure=2 (kernel panic when audit fails): credwatch never asks for either.
 */
export function validateStatusChange(changes: AuditStatusChange): AuditStatusChange {
  if (changes === null || typeof changes !== 'object') throw new TypeError('setStatus needs an object');
  const out: AuditStatusChange = {};
  for (const key of Object.keys(changes)) {
    if (!(STATUS_FIELDS as readonly string[]).includes(key)) {
      throw new TypeError(`setStatus: unknown field "${key}" (known: ${STATUS_FIELDS.join(', ')})`);
    }
  }
  for (const key of STATUS_FIELDS) {
    const value: unknown = changes[key];
    if (value === undefined) continue;
    if (!isUint32(value)) throw new RangeError(`setStatus: ${key} must be an unsigned 32-bit integer`);
    if ((key === 'enabled' || key === 'failure') && value > 1) {
      throw new RangeError(
        key === 'enabled'
          ? 'setStatus: enabled must be 0 or 1 (credwatch never locks the audit configuration with enabled=2)'
          : 'setStatus: failure must be 0 or 1 (credwatch never sets failure=2, which panics the kernel)',
      );
    }
    (out as Record<string, number>)[key] = value;
  }
  return out;
}

function validateRule(rule: Buffer, what: string): void {
  if (!Buffer.isBuffer(rule)) throw new TypeError(`${what}: rule must be a Buffer (audit_rule_data)`);
  if (rule.length < AUDIT_RULE_DATA_HEADER_SIZE) {
    throw new RangeError(`${what}: ${rule.length} bytes is shorter than struct audit_rule_data`);
  }
  // The kernel accepts trailing bytes past buflen, so a payload with garbage appended would still be
  // installed (and could not be found again by deleteRule with the exact kernel form): refuse it here.
  const buflen = rule.readUInt32LE(AUDIT_RULE_DATA_HEADER_SIZE - 4);
  if (rule.length !== AUDIT_RULE_DATA_HEADER_SIZE + buflen) {
    throw new RangeError(`${what}: payload is ${rule.length} bytes but its buflen says ${AUDIT_RULE_DATA_HEADER_SIZE + buflen}`);
  }
}

function validateSocketOptions(options: AuditSocketOptions): void {
  if (options === null || typeof options !== 'object') throw new TypeError('AuditSocket needs options');
  if (options.mode !== 'unicast' && options.mode !== 'multicast') {
    throw new TypeError(`AuditSocket: mode must be 'unicast' or 'multicast', not ${String(options.mode)}`);
  }
  for (const key of ['queueLimit', 'batchMaxRecords'] as const) {
    const v = options[key];
    if (v !== undefined && !(Number.isInteger(v) && v >= 1 && v <= 65536)) {
      throw new RangeError(`AuditSocket: ${key} must be an integer from 1 to 65536`);
    }
  }
  if (options.overflow !== undefined && options.overflow !== 'drop' && options.overflow !== 'block') {
    throw new TypeError(`AuditSocket: overflow must be 'drop' or 'block', not ${String(options.overflow)}`);
  }
  if (options.procSnapshots !== undefined && typeof options.procSnapshots !== 'boolean') {
    throw new TypeError('AuditSocket: procSnapshots must be a boolean');
  }
  if (typeof options.onBatch !== 'function') throw new TypeError('AuditSocket: onBatch must be a function');
}

/** Synchronous control calls on the kernel audit subsystem; each waits for the kernel's answer. */
export interface AuditControl {
  /** AUDIT_GET. */
  getStatus(): AuditStatus;
  /** AUDIT_SET, one request per field (failure, rateLimit, backlogLimit, backlogWaitTime, pid, enabled). */
  setStatus(changes: AuditStatusChange): void;
  /** AUDIT_ADD_RULE with a raw audit_rule_data payload (see src/audit/rules/wire.ts). EEXIST if present. */
  addRule(rule: Buffer): void;
  /** AUDIT_DEL_RULE: the kernel deletes the rule whose payload matches. ENOENT if absent. */
  deleteRule(rule: Buffer): void;
  /** AUDIT_LIST_RULES: every rule, as raw audit_rule_data payloads, in kernel order. */
  listRules(): Buffer[];
  /**
   * sd_notify(3): sends `state` (e.g. "READY=1") to `socketPath`, which defaults to $NOTIFY_SOCKET
   * (a path, or "@name" for an abstract socket). Returns false when there is no socket to notify.
   */
  sdNotify(state: string, socketPath?: string): boolean;
}

/** The seam for tests: validation over any NativeBinding (a fake records what reached "native"). */
export function createAuditControl(getNative: () => NativeBinding = loadNative): AuditControl {
  return {
    getStatus: () => getNative().getStatus(),
    setStatus(changes) {
      getNative().setStatus(validateStatusChange(changes));
    },
    addRule(rule) {
      validateRule(rule, 'addRule');
      getNative().addRule(rule);
    },
    deleteRule(rule) {
      validateRule(rule, 'deleteRule');
      getNative().deleteRule(rule);
    },
    listRules: () => getNative().listRules(),
    sdNotify(state, socketPath = process.env.NOTIFY_SOCKET) {
      if (typeof state !== 'string') throw new TypeError('sdNotify: state must be a string');
      if (socketPath === undefined || socketPath === '') return false;
      getNative().sdNotify(socketPath, state);
      return true;
    },
  };
}

export type AuditSocketFactory = (options: AuditSocketOptions) => NativeAuditSocket;

/** Creates the native AuditSocket after validating its options. */
export function createAuditSocket(options: AuditSocketOptions): NativeAuditSocket {
  validateSocketOptions(options);
  const native = loadNative();
  const { onBatch } = options;
  return new native.AuditSocket({
    ...options,
    // The addon hands a batch over as two arrays (native/audit_socket.cc DeliverToJs); the objects are
    // made here, where a literal costs a fraction of what an object built through N-API does.
    onBatch: (types, texts) => {
      const batch: NativeRecord[] = []; // pushed, not preallocated: a packed array, not a holey one
      for (let i = 0; i < types.length; i++) batch.push({ type: types[i] as number, text: texts[i] as string });
      onBatch(batch);
    },
  });
}

const control = createAuditControl();
export const getStatus = control.getStatus;
export const setStatus = control.setStatus;
export const addRule = control.addRule;
export const deleteRule = control.deleteRule;
export const listRules = control.listRules;
export const sdNotify = control.sdNotify;

export { AuditError };
export type { AuditSocketOptions, AuditStatus, AuditStatusChange, NativeAuditSocket };
