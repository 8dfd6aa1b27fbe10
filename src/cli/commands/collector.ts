import type { Command } from 'commander';
import { RuntimeFailure } from '../errors';

// Placeholder until the owning issue lands: the command exists so that --help lists it.
export function register(program: Command): void {
  program
    .command('collector')
    .description('(not implemented yet)')
    .allowUnknownOption()
    .action(() => {
      throw new RuntimeFailure('collector is not implemented yet');
    });
}
