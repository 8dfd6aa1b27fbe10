'use strict';
// tsc emits only .js; the detection rule pack is YAML data that must sit beside the compiled engine.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const assets = [['src/detect/rules', 'dist/src/detect/rules']];
for (const [from, to] of assets) {
  const src = path.join(root, from);
  if (!fs.existsSync(src)) continue;
  fs.mkdirSync(path.join(root, to), { recursive: true });
  for (const name of fs.readdirSync(src)) {
    if (name.endsWith('.yaml') || name.endsWith('.yml')) {
      fs.copyFileSync(path.join(src, name), path.join(root, to, name));
    }
  }
}
