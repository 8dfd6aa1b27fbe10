/**
 * The reader's repeat cache (native/repeat_cache.h) through the addon's triageRecords() test hook: a
 * passed event becomes a repeat note only when its records equal a template's but for the audit stamp
 * and the SYSCALL pid, and the note rebuilds the event byte for byte (src/native/repeat-note.ts). Any
 * other difference, however small, is a new template. Templates are bounded and evictions counted, and
 * the JavaScript side never forgets a template the reader can still name.
 */
import { describe, expect, it } from 'vitest';

import { nativeTriageFor } from '../../../src/daemon/native-triage';
import { createHostStages } from '../../../src/pipeline/host-stages';
import { REPEAT_NOTE_TYPE, REPEAT_TEMPLATE_TYPE, REPEAT_TEMPLATES_KEPT, RepeatTemplates, parseRepeatNote, parseRepeatTemplate, rebuildRecords } from '../../../src/native/repeat-note';
import { tryLoadNative } from '../../helpers/native';

const { native, reason } = tryLoadNative();
if (reason) console.warn(`[skip] native repeat cache: ${reason}`);

const spec = { ...nativeTriageFor(createHostStages({ host: 'lab-node', users: null }).detector).spec, repeats: true };
const hex = (s: string): string => Buffer.from(s).toString('hex').toUpperCase();
const SOCK = hex('\u0001\u0000/var/run/docker.sock');

interface Rec {
  type: number;
  text: string;
}

function connect(serial: number, pid: number, over: { ppid?: number; comm?: string; cwd?: string; saddr?: string; ms?: number; a1?: string } = {}): Rec[] {
  const h = `audit(1795355795.${String(over.ms ?? serial % 1000).padStart(3, '0')}:${serial}): `;
  return [
    { type: 1300, text: `${h}arch=c000003e syscall=42 success=no exit=-111 a0=3 a1=${over.a1 ?? '7ffe93262170'} a2=6e a3=0 items=1 ppid=${over.ppid ?? 100} pid=${pid} auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="${over.comm ?? 'loadgen'}" exe="/usr/local/bin/loadgen" key="credwatch:connect"` },
    { type: 1306, text: `${h}saddr=${over.saddr ?? SOCK}` },
    { type: 1307, text: `${h}cwd="${over.cwd ?? '/home/dev'}"` },
    { type: 1327, text: `${h}proctitle=6C6F616467656E` },
    { type: 1320, text: h },
  ];
}

describe.skipIf(native === null)('native repeat cache', () => {
  const run = (records: Rec[]) => native!.triageRecords(spec, records);

  it('a repeat differing only in stamp, pid and syscall arguments is a note that rebuilds the event byte for byte', () => {
    const first = connect(1, 5000);
    // A pid and a pointer of other lengths too: the mask is the value, not a fixed width.
    const second = connect(2, 5001234, { ms: 999, a1: '55d0c0ffee' });
    const out = run([...first, ...second]);
    expect(out.stats).toMatchObject({ repeatTemplates: 1, repeatNotes: 1, repeatSkipped: 0 });
    const ann = parseRepeatTemplate(out.items[0]!.text);
    expect(out.items[0]!.type).toBe(REPEAT_TEMPLATE_TYPE);
    expect(ann).toMatchObject({ template: 1, serial: 1 });
    // The template's records pass unchanged, then the note stands for the whole second event.
    expect(out.items.slice(1, 1 + first.length).map((r) => r.text)).toEqual(first.map((r) => r.text));
    const last = out.items[out.items.length - 1]!;
    expect(last.type).toBe(REPEAT_NOTE_TYPE);
    expect(last.count).toBe(second.length);
    const note = parseRepeatNote(last.text)!;
    expect(note).toMatchObject({ template: 1, serial: 2, pid: 5001234, id: '1795355795.999:2', timeMs: 1795355795999, args: ['3', '55d0c0ffee', '6e', '0'] });
    expect(rebuildRecords(first, note)).toEqual(second);
  });

  it('any other difference makes a new template: parent, comm, cwd, socket address', () => {
    const variants = [connect(2, 5001, { ppid: 101 }), connect(3, 5002, { comm: 'loadgeN' }), connect(4, 5003, { cwd: '/home/dev/' }), connect(5, 5004, { saddr: hex('\u0001\u0000/run/docker.sock') })];
    const out = run([...connect(1, 5000), ...variants.flat()]);
    expect(out.stats.repeatNotes).toBe(0);
    expect(out.stats.repeatTemplates).toBe(5);
  });

  it('templates are bounded: the least recently used is evicted and counted, and comes back as a new template', () => {
    const records: Rec[] = [];
    for (let i = 0; i < 65; i++) records.push(...connect(i + 1, 5000 + i, { ppid: 1000 + i }));
    records.push(...connect(100, 7000, { ppid: 1000 })); // the first template, evicted by the 65th
    const out = run(records);
    expect(out.stats).toMatchObject({ repeatTemplates: 66, repeatEvictions: 2, repeatNotes: 0 });
  });

  it('is off unless the spec asks for it', () => {
    const out = native!.triageRecords({ ...spec, repeats: false }, [...connect(1, 5000), ...connect(2, 5001)]);
    expect(out.stats.repeatNotes).toBe(0);
    expect(out.items.some((r) => r.type === REPEAT_TEMPLATE_TYPE || r.type === REPEAT_NOTE_TYPE)).toBe(false);
  });
});

describe('repeat note parsing (JavaScript side)', () => {
  it('reads a note, and refuses anything not exactly of its shape', () => {
    const good = '12\u0000audit(1795355795.042:77): \u0000' + '4321\u0000' + '1300,1306,1320\u00003,7ffe93262170,6e,0';
    expect(parseRepeatNote(good)).toEqual({ template: 12, header: 'audit(1795355795.042:77): ', serial: 77, sec: 1795355795, ms: 42, id: '1795355795.042:77', timeMs: 1795355795042, pid: 4321, recordTypes: [1300, 1306, 1320], args: ['3', '7ffe93262170', '6e', '0'] });
    const bad = [
      '',
      '12\u0000audit(1795355795.042:77): \u00004321\u00001300',
      '12\u0000audit(1795355795.042:77): \u00004321\u00001300\u00003,1,2',
      '12\u0000audit(1795355795.042:77): \u00004321\u00001300\u00003,1,2,x',
      '12\u0000audit(1795355795.042:77): \u00004321\u00001300\u00003,1,2,' + '1'.repeat(17),
      '12\u0000audit(1795355795.042:77): \u00004321\u00003,1,2,0',
      '12\u0000audit(1795355795.042:77): \u00004321\u00001300\u0000extra\u00003,1,2,0',
      'x\u0000audit(1795355795.042:77): \u00004321\u00001300\u00003,1,2,0',
      '12\u0000audit(1795355795.42:77): \u00004321\u00001300\u00003,1,2,0',
      '12\u0000audit(1795355795.042:77) \u00004321\u00001300\u00003,1,2,0',
      '12\u0000audit(1795355795.042:77): junk\u00004321\u00001300\u00003,1,2,0',
      '12\u0000audit(1795355795.042:77): \u0000-1\u00001300\u00003,1,2,0',
      '12\u0000audit(1795355795.042:77): \u00004321\u00001300,,1320\u00003,1,2,0',
      '12\u0000audit(1795355795.042:77): \u00004321\u0000' + '9'.repeat(16) + '\u00003,1,2,0',
    ];
    for (const b of bad) expect(parseRepeatNote(b), JSON.stringify(b)).toBeNull();
  });
});

describe('RepeatTemplates (JavaScript side)', () => {
  it('keeps every template the reader can still name: the same touches, twice the room', () => {
    // The reader's LRU of 64 and this side's of 128, driven by the same sequence of announcements and notes.
    const reader: number[] = [];
    const js = new RepeatTemplates(REPEAT_TEMPLATES_KEPT);
    let next = 1;
    let seed = 7;
    const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let step = 0; step < 5000; step++) {
      if (reader.length > 0 && rand(3) > 0) {
        const id = reader[rand(reader.length)]!;
        reader.splice(reader.indexOf(id), 1);
        reader.push(id);
        expect(js.use(id)).not.toBeUndefined();
      } else {
        const id = next++;
        reader.push(id);
        if (reader.length > 64) reader.shift();
        js.announce({ template: id, header: `audit(1.000:${id}): `, serial: id });
        js.attach(id, [{ type: 1300, text: 'x' }]);
      }
    }
  });
});

describe('parseRepeatNote: the masked a0..a3', () => {
  const note = (args: string): string => `7\0audit(1795355785.044:1444187): \u000011126\u00001300,1327\u0000${args}`;
  it('takes four comma-separated hex values of 1 to 16 digits and refuses any other list', () => {
    expect(parseRepeatNote(note('3,7ffdc9d58250,3c,0'))?.args).toEqual(['3', '7ffdc9d58250', '3c', '0']);
    expect(parseRepeatNote(note('ffffffffffffffff,A,b,C'))?.args).toEqual(['ffffffffffffffff', 'A', 'b', 'C']);
    for (const bad of ['', '3,7,3c', '3,7,3c,0,1', '3,,3c,0', '3,7,3c,', ',3,7,3c', '1ffffffffffffffff,1,2,3', '3,7g,3c,0', '3,7,3c,0 ', '-1,2,3,4']) {
      expect(parseRepeatNote(note(bad)), bad).toBeNull();
    }
  });
});
