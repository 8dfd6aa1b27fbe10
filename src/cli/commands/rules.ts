import type { Command } from 'commander';
import { RuntimeFailure } from '../errors';

// Placeholder until the owning issue lands: the command exists so that --help lists it.
export function register(program: Command): void {
  program
    .command('rules')
    .description('(not implemented yet)')
    .allowUnknownOption()
    .action(() => {
      throw new RuntimeFailure('rules is not implemented yet');
    });
}
