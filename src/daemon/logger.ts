/**
 * Structured logs: pino, JSON lines on stdout (journald stores them with the unit). Secrets that could
 * ride along in logged objects are redacted by key. A line that can repeat under load goes through
 * src/log/rate-limit.ts (one line per cause per interval, with the count).
 */
import pino from 'pino';
import type { LOG_LEVELS } from './config-schema';

export type Logger = pino.Logger;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel = 'info', destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // "level":"warn", not 40: journalctl -o cat, grep and a log shipper read the name (agent and collector alike).
    formatters: { level: (label) => ({ level: label }) },
    redact: {
      paths: ['token', '*.token', 'password', '*.password', 'api_key', '*.api_key', 'headers.authorization', '*.headers.authorization'],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
