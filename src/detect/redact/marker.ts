export const REDACTED = '[REDACTED]';
