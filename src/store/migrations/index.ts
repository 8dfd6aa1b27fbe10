/**
 * Versioned schema migrations. The schema version is SQLite's `user_version`; each migration runs in
 * its own transaction together with the version bump, so a crash mid-migration leaves the old version.
 * Migrations are TypeScript modules (not .sql files) so the build needs no asset copying for them.
 */
import { initial } from './001-initial';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [initial];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
