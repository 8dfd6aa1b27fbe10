/** `credwatch show ID`: one finding with its full evidence (process chain, container/pod, redacted records). */
import type { Command } from 'commander';
import { withReadOnlyStore } from '../../store';
import { addDbOptions, resolveDbPath, type DbOptions } from '../db-option';
import { RuntimeFailure } from '../errors';
import { toJsonLine } from '../render/escape';
import { renderFindingDetail } from '../render/findings';
import { resolveFormat } from './findings';

export function register(program: Command): void {
  addDbOptions(
    program
      .command('show')
      .description('Show one finding with its full evidence')
      .argument('<id>', 'finding id or a unique prefix of it (as listed by `credwatch findings`)')
      .option('--json', 'the finding as one JSON object'),
  )
    .action((id: string, opts: { json?: boolean } & DbOptions) => {
      const format = resolveFormat(opts);
      const f = withReadOnlyStore(resolveDbPath(opts), (store) => {
        const found = store.getFinding(id.trim());
        if (!found) throw new RuntimeFailure(`no finding with id or id prefix "${id}" in ${store.path}`);
        return found;
      });
      process.stdout.write(format === 'json' ? toJsonLine(f) + '\n' : renderFindingDetail(f));
    });
}
