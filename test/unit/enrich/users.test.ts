import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserDb, isInteractive, normaliseAuid, parseIdFile } from '../../../src/enrich/users';

describe('users', () => {
  it('parses passwd/group lines, skipping bad ones', () => {
    const m = parseIdFile('root:x:0:0:root:/root:/bin/bash\n# c\nbad\nalice:x:1000:1000::/home/alice:/bin/sh\ndup:x:0:0::/:/bin/sh\n');
    expect([...m]).toEqual([[0, 'root'], [1000, 'alice']]);
  });

  it('reloads when the file changes, checked at most every recheckMs', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-users-'));
    const passwd = path.join(dir, 'passwd');
    fs.writeFileSync(passwd, 'root:x:0:0::/:/bin/sh\n');
    let now = 0;
    const db = new UserDb({ passwdPath: passwd, groupPath: path.join(dir, 'group'), recheckMs: 1000, now: () => now });
    expect(db.userName(0)).toBe('root');
    expect(db.userName(1000)).toBeNull();
    fs.writeFileSync(passwd, 'root:x:0:0::/:/bin/sh\nbob:x:1000:1000::/:/bin/sh\n');
    fs.utimesSync(passwd, new Date(), new Date(Date.now() + 5000));
    expect(db.userName(1000)).toBeNull(); // not rechecked yet
    now = 2000;
    expect(db.userName(1000)).toBe('bob');
    expect(db.groupName(0)).toBeNull(); // missing group file is not an error
    fs.rmSync(dir, { recursive: true });
  });

  it('interactive needs a tty and a real auid', () => {
    expect(normaliseAuid(4294967295)).toBeNull();
    expect(isInteractive('pts0', 1000)).toBe(true);
    expect(isInteractive(null, 1000)).toBe(false);
    expect(isInteractive('pts0', null)).toBe(false);
    expect(isInteractive('pts0', 4294967295)).toBe(false);
  });
});
