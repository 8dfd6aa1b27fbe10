import { describe, expect, it } from 'vitest';
import { Enricher, NODE_STATES_MAX } from '../../../src/enrich/enricher';
import { makeEvent } from './helpers';

const exec = (node: string | null, pid: number, ppid: number, exe: string) =>
  makeEvent({ node, process: { pid, ppid, exe, argv: [exe] } });

describe('Enricher: a process state per node', () => {
  it('keeps the same pid of two nodes apart, and events without a node in the default table', () => {
    const e = new Enricher({ users: null });
    e.enrich(exec('node-a', 200, 100, '/usr/sbin/runc'));
    e.enrich(exec('node-b', 200, 150, '/usr/bin/sleep'));
    e.enrich(exec(null, 200, 7, '/usr/bin/live'));
    expect(e.tableOf('node-a').get(200)).toMatchObject({ ppid: 100, exe: '/usr/sbin/runc' });
    expect(e.tableOf('node-b').get(200)).toMatchObject({ ppid: 150, exe: '/usr/bin/sleep' });
    expect(e.processTable.get(200)).toMatchObject({ ppid: 7, exe: '/usr/bin/live' });
    expect(e.tableOf(null)).toBe(e.processTable);
  });

  it('folds a process note into the node it is given, and an again-note only where that pid is known', () => {
    const e = new Enricher({ users: null });
    e.enrich(exec('node-a', 300, 1, '/usr/bin/a'));
    const note = { kind: 'exec' as const, serial: 1, timeMs: 5, recordTypes: [1300], pid: 301, ppid: 300, uid: 0, auid: null, tty: null, exe: '/usr/bin/b', comm: null, cwd: null, argv: ['b'] };
    e.noteProcess(note, 'node-b');
    expect(e.tableOf('node-b').get(301)?.exe).toBe('/usr/bin/b');
    expect(e.tableOf('node-a').get(301)).toBeUndefined();
    expect(e.noteProcessAgain(301, 'node-b')).toBe(true);
    expect(e.noteProcessAgain(301, 'node-a')).toBe(false);
  });

  it('bounds the named nodes, forgetting the least recently seen one and counting it', () => {
    const e = new Enricher({ users: null });
    for (let i = 0; i <= NODE_STATES_MAX; i++) e.enrich(exec(`n${i}`, 10, 1, '/x'));
    expect(e.nodeStates).toBe(NODE_STATES_MAX);
    expect(e.nodeStatesForgotten).toBe(1);
    // n0 was forgotten: seen again it starts from an empty table (and n1, now the oldest, goes).
    expect(e.tableOf('n0').get(10)).toBeUndefined();
    expect(e.nodeStatesForgotten).toBe(2);
    expect(e.tableOf(`n${NODE_STATES_MAX}`).get(10)?.exe).toBe('/x');
  });
});
