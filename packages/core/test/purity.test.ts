/**
 * The lint rules that keep packages/core pure (DESIGN.md: no node:* imports, timers, Date,
 * Math.random, promises or async) catch each planted violation, and the real core sources pass.
 */
import { ESLint } from 'eslint';
import { describe, expect, test } from 'vitest';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../..', import.meta.url));

describe('core purity lint', () => {
  const eslint = new ESLint({ cwd: root });
  const planted: [string, string][] = [
    ['a node:* import', "import { readFileSync } from 'node:fs';\nexport const read = readFileSync;\n"],
    ['a timer', 'export function later(): void { setTimeout(() => undefined, 1); }\n'],
    ['a clock', 'export const now = Date.now();\n'],
    ['Math.random', 'export const roll = Math.random();\n'],
    ['an async function', 'export async function wait(): Promise<void> {}\n'],
    ['a promise', 'export const done = Promise.resolve(1);\n'],
  ];
  for (const [what, code] of planted) {
    test(`rejects ${what} in packages/core/src`, async () => {
      const [result] = await eslint.lintText(code, { filePath: `${root}/packages/core/src/planted.ts` });
      expect(result?.errorCount ?? 0).toBeGreaterThan(0);
      expect(result?.messages.map((m) => m.message).join('\n')).toMatch(/core is pure|restricted/);
    });
  }

  test('the same code is allowed outside core', async () => {
    const [result] = await eslint.lintText("export const roll = Math.random();\n", { filePath: `${root}/packages/runtime/src/planted.ts` });
    expect(result?.errorCount).toBe(0);
  });

  test('the core sources pass', async () => {
    const results = await eslint.lintFiles([`${root}/packages/core/src`]);
    const errors = results.flatMap((r) => r.messages.filter((m) => m.severity === 2).map((m) => `${r.filePath}:${m.line} ${m.message}`));
    expect(errors).toEqual([]);
  });
});
