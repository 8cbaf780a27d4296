// ESLint: typescript-eslint's recommended rules everywhere, plus the rules that keep
// packages/core pure (no I/O, no clocks, no randomness, no async: see DESIGN.md).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const coreRestrictedGlobals = [
  { name: 'setTimeout', message: 'core is pure: time enters only through tick()' },
  { name: 'setInterval', message: 'core is pure: time enters only through tick()' },
  { name: 'setImmediate', message: 'core is pure: time enters only through tick()' },
  { name: 'queueMicrotask', message: 'core is pure: no async work' },
  { name: 'Date', message: 'core is pure: no clocks; time enters only through tick()' },
  { name: 'performance', message: 'core is pure: no clocks' },
  { name: 'Promise', message: 'core is pure: no promises' },
  { name: 'process', message: 'core is pure: no process access' },
  { name: 'require', message: 'core is pure: no module loading' },
  { name: 'fetch', message: 'core is pure: no I/O' },
  { name: 'console', message: 'core is pure: report through Ready, not logs' },
];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'results/**', '**/*.d.ts', 'benchmarks/peers/**', 'tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', performance: 'readonly', AbortController: 'readonly', queueMicrotask: 'readonly', structuredClone: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['packages/core/src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['node:*', 'fs', 'net', 'http', 'os', 'path', 'crypto', 'child_process', 'worker_threads', 'timers', 'events'], message: 'core is pure: no I/O or Node modules' }] }],
      'no-restricted-globals': ['error', ...coreRestrictedGlobals],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'core is pure: randomness comes from the seeded Prng in config' }],
      'no-restricted-syntax': [
        'error',
        { selector: 'FunctionDeclaration[async=true], FunctionExpression[async=true], ArrowFunctionExpression[async=true]', message: 'core is pure: no async functions' },
        { selector: 'AwaitExpression', message: 'core is pure: no await' },
        { selector: 'NewExpression[callee.name="Date"]', message: 'core is pure: no clocks' },
      ],
    },
  },
);
