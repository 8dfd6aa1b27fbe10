/** Public surface of the findings store. */
export { openStore, withReadOnlyStore, type FindingStore, type OpenStoreOptions } from './store';
export { DEFAULT_DB_PATH, defaultDbPath, StoreOpenError, type StoreOpenErrorKind } from './db';
export { AmbiguousIdError } from './findings';
export { Outbox } from './outbox';
export { State } from './state';
export { BatchWriter, type BatchWriterOptions, type BatchWriterCounters, type FindingSink } from './batch-writer';
export { startRetentionTimer, type RetentionPolicy, type RetentionResult, type RetentionTimer, type RetentionTimerOptions } from './retention';
export type { FindingsQuery, OutboxReader, StateStore } from './types';
