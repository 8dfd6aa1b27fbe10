/** The host lookups rule parsing needs (a seam, so tests need not depend on this machine). */
import { readFileSync, statSync } from 'node:fs';
import type { Machine, RuleEnvironment } from './types';

export function machineOfThisProcess(): Machine {
  return process.arch === 'ia32' ? 'i386' : 'x86_64';
}

function lookupColonFile(file: string, name: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const parts = line.split(':');
    if (parts[0] === name && parts[2] !== undefined && /^\d+$/.test(parts[2])) return Number(parts[2]);
  }
  return undefined;
}

/** The real host: stat(2) for watches, /etc/passwd and /etc/group for names (as getpwnam would, minus NSS). */
export const systemRuleEnvironment: RuleEnvironment = {
  isDirectory(path: string): boolean {
    try {
      return statSync(path).isDirectory();
    } catch {
      return false;
    }
  },
  userId: (name) => lookupColonFile('/etc/passwd', name),
  groupId: (name) => lookupColonFile('/etc/group', name),
  machine: machineOfThisProcess(),
};
