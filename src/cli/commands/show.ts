/** `credwatch show ID`: one finding with its full evidence (process chain, container/pod, redacted records). */
import type { Command } from 'commander';
import { defaultDbPath, withReadOnlyStore } from '../../store';
import { RuntimeFailure } from '../errors';
import { toJsonLine } from '../render/escape';
import { renderFindingDetail } from '../render/findings';
import { resolveFormat } from './findings';

export function register(program: Command): void {
  program
    .command('show')
    .description('Show one finding with its full evidence')
    .argument('<id>', 'finding id or a unique prefix of it (as listed by `credwatch findings`)')
    .option('--json', 'the finding as one JSON object')
    .option('--db <file>', `findings database (default: $CREDWATCH_DB or ${defaultDbPath({})})`)
    .action((id: string, opts: { json?: boolean; db?: string }) => {
      const format = resolveFormat(opts);
      const f = withReadOnlyStore(opts.db ?? defaultDbPath(), (store) => {
        const found = store.getFinding(id.trim());
        if (!found) throw new RuntimeFailure(`no finding with id or id prefix "${id}" in ${store.path}`);
        return found;
      });
      process.stdout.write(format === 'json' ? toJsonLine(f) + '\n' : renderFindingDetail(f));
    });
}
