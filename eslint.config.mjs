import js from '@eslint/js';
import importPlugin from 'eslint-plugin-import';
import tseslint from 'typescript-eslint';

// The direction of the data flow (docs/architecture.md): a folder of src/ may import only from the
// folders listed before it. An upward import (store reaching into the daemon, detect into the
// pipeline) is a lint error, so no cycle between folders can come back.
const LAYERS = ['model', 'log', 'audit', 'native', 'kube', 'enrich', 'detect', 'pipeline', 'store', 'ship', 'sources', 'daemon', 'collector', 'cli'];
const layerZones = LAYERS.map((layer, i) => ({
  target: `./src/${layer}`,
  from: LAYERS.slice(i + 1).map((upper) => `./src/${upper}`),
  message: `src/${layer} sits below ${LAYERS.slice(i + 1).join(', ')} in the data flow (docs/architecture.md)`,
})).filter((zone) => zone.from.length > 0);

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'prebuilds/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { import: importPlugin },
    settings: { 'import/resolver': { node: { extensions: ['.ts', '.js'] } } },
    rules: { 'import/no-restricted-paths': ['error', { zones: layerZones }] },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-control-regex': 'off',
    },
  },
);
