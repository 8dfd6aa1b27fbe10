/**
 * A `replay --jobs N` worker: a child process forked by replay-parallel.ts. It takes one task over
 * IPC (one stream's files), runs it through the sequential replay functions, and sends back what the
 * parent sums or joins: counters, and in findings mode the host findings and a mark at the end of each
 * file. It prints nothing itself but `--events` lines (to the stdout the parent gave it: the terminal
 * or pipe, or a temporary file), so a failure reaches the user once, from the parent.
 */
import { exitCodeOf } from '../errors';
import { replayEvents, type ReplayOptions } from './replay';
import { replayFindings } from './replay-findings';
import { READER_GONE_EXIT, type ToParent, type WorkerTask } from './replay-parallel';

function send(msg: ToParent): Promise<void> {
  return new Promise((resolve, reject) => process.send!(msg, undefined, {}, (err) => (err ? reject(err) : resolve())));
}

async function run(task: WorkerTask): Promise<void> {
  const pending: Promise<void>[] = [];
  const post = (msg: ToParent): void => void pending.push(send(msg));
  if (task.kind === 'events') {
    const opts: ReplayOptions = { ...task.opts, onSummary: (summary) => post({ t: 'summary', summary }) };
    await replayEvents(task.files, opts);
  } else {
    await replayFindings(task.files, {
      ...task.opts,
      sink: {
        findings: (findings) => post({ t: 'findings', findings }),
        fileDone: (_file, counts) => post({ t: 'file', ...counts }),
        end: (counters, native) => post({ t: 'end', counters, native }),
      },
    });
  }
  await Promise.all(pending);
}

// The parent gone (it exited: `| head` closed its stdout, or it was killed): the work is for nobody,
// and a worker must not outlive its run.
let finishing = false;
process.once('disconnect', () => {
  if (!finishing) process.exit(1);
});
// `replay --events --jobs N | head`: the reader closing the pipe is its choice, as in main.ts.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(READER_GONE_EXIT);
  throw err;
});

/** Lets this process exit once stdout is written; the parent may be gone already, and its channel with it. */
function end(): void {
  if (process.connected) process.disconnect();
}

process.once('message', (task: WorkerTask) => {
  run(task).then(
    () => {
      finishing = true;
      end();
    },
    (err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      // Nobody to tell when the parent is gone (its reader closed the pipe, say): exit quietly.
      send({ t: 'error', message, exitCode: exitCodeOf(err) }).then(
        () => {
          finishing = true;
          end();
        },
        () => process.exit(1),
      );
    },
  );
});
