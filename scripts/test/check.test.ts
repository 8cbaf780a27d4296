/**
 * The regression gate (scripts/src/gate.ts, check.ts) fails exactly when it should: on synthetic
 * numbers, more than 3% more instructions fails and anything within passes, a changed exact figure
 * fails, a missing or incomparable baseline fails, and wall-clock drift never fails. On the real
 * workload, a planted duplicate delivery changes the exact figures; and under valgrind two clean
 * runs repeat within 0.1% while a planted per-entry copy lands far over the 3% bound, so the gate
 * built from the first run fails the planted one and passes the second clean one.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { checkWorkloads } from '@raftlab/benchmarks/dist/check-workloads.js';
import { afterAll, describe, expect, test } from 'vitest';

import {
  type Baseline,
  GateError,
  type Measurement,
  buildBaseline,
  compareWithBaseline,
  diffFigures,
  formatVerdict,
  parseCachegrindInstructions,
  parseFigures,
  validateBaseline,
} from '../src/gate.js';
import { repositoryRoot } from '../src/paths.js';
import { runUnderCachegrind, workloadEnvironment } from '../src/valgrind.js';

const figures = { messagesPerEntry: 0.008, ticksToElect: [14, 10, 13], checksum: '9468fd75' };
const args = ['--batches', '100'];

function measurement(instructions: number, overrides: Partial<Measurement> = {}): Measurement {
  return { name: 'core-memory-3', args, instructions, figures, wallMs: 200, probeMs: 60, ...overrides };
}

function baselineOf(instructions: number): Baseline {
  return buildBaseline(null, [measurement(instructions)], new Map([['core-memory-3', 'test workload']]), {
    recordedAt: '2026-01-01T00:00:00.000Z',
    machine: { cpuModel: 'Test CPU', cores: 2, memoryBytes: 1, platform: 'linux', arch: 'x64' },
    node: 'v20.20.2',
    valgrind: 'valgrind-3.19.0',
    commit: 'abc1234',
    dirty: false,
    nodeFlags: ['--predictable'],
  });
}

describe('cachegrind output', () => {
  const sample = ['desc: I1 cache: 65536 B, 64 B, 16-way associative', 'cmd: node x.js', 'events: Ir', 'fl=x', 'fn=main', '1 10', 'summary: 899837364', ''].join('\n');

  test('the instruction count is the summary in the Ir column', () => {
    expect(parseCachegrindInstructions(sample)).toBe(899_837_364);
    expect(parseCachegrindInstructions('events: Dr Ir Dw\nsummary: 5 77 9\n')).toBe(77);
  });

  test('a file without a summary, or without Ir, is refused with the reason', () => {
    expect(() => parseCachegrindInstructions('events: Ir\n')).toThrow(/no "summary:" line/);
    expect(() => parseCachegrindInstructions('summary: 5\n')).toThrow(/no "events:" line/);
    expect(() => parseCachegrindInstructions('events: Dr\nsummary: 5\n')).toThrow(/counted Dr, not Ir/);
    expect(() => parseCachegrindInstructions('events: Ir\nsummary: x\n')).toThrow(GateError);
  });
});

describe('workload output', () => {
  test('figures are the JSON object on the last non-empty stdout line', () => {
    expect(parseFigures('warming up\n{"a":1}\n\n', 'w')).toEqual({ a: 1 });
  });

  test('no output, non-JSON or a non-object is refused with the workload named', () => {
    expect(() => parseFigures('', 'w')).toThrow(/w printed nothing/);
    expect(() => parseFigures('done\n', 'w')).toThrow(/w's last stdout line is not JSON: done/);
    expect(() => parseFigures('[1,2]\n', 'w')).toThrow(/not an object/);
  });

  test('figure differences are listed by name, key order ignored', () => {
    expect(diffFigures({ a: 1, b: { x: 1, y: 2 } }, { b: { y: 2, x: 1 }, a: 1 })).toEqual([]);
    expect(diffFigures({ a: 1, b: [1, 2] }, { a: 2, c: true })).toEqual(['a: baseline 1, now 2', 'b: baseline [1,2], now (absent)', 'c: baseline (absent), now true']);
  });
});

describe('comparison with the baseline', () => {
  test('instructions within 3% of the baseline pass', () => {
    const verdict = compareWithBaseline(baselineOf(1_000_000_000), [measurement(1_029_999_999)]);
    expect(verdict.ok).toBe(true);
    expect(verdict.workloads[0]?.deltaPercent).toBeCloseTo(3, 5);
  });

  test('more than 3% over the baseline fails, with the delta in the table', () => {
    const verdict = compareWithBaseline(baselineOf(1_000_000_000), [measurement(1_030_000_001)]);
    expect(verdict.ok).toBe(false);
    const text = formatVerdict(verdict);
    expect(text).toMatch(/\| core-memory-3 \| 1,000,000,000 \| 1,030,000,001 \| \+3\.00% \| same +\| +\+0\.00% vs probe \| FAIL +\|/);
    expect(text).toContain('FAIL core-memory-3: +3.00% instructions, over the 3% bound');
    expect(text).toContain('bench:check FAILED: 1 of 1 workload(s)');
  });

  test('the bound is configurable', () => {
    expect(compareWithBaseline(baselineOf(1000), [measurement(1015)], 1).ok).toBe(false);
    expect(compareWithBaseline(baselineOf(1000), [measurement(1015)], 2).ok).toBe(true);
  });

  test('fewer instructions pass, with a note to lock the gain in', () => {
    const verdict = compareWithBaseline(baselineOf(1_000_000), [measurement(900_000)]);
    expect(verdict.ok).toBe(true);
    expect(formatVerdict(verdict)).toContain('note core-memory-3: -10.00% instructions: faster than the baseline');
  });

  test('a changed exact figure fails even with identical instructions', () => {
    const verdict = compareWithBaseline(baselineOf(1_000_000), [measurement(1_000_000, { figures: { ...figures, messagesPerEntry: 0.012 } })]);
    expect(verdict.ok).toBe(false);
    const text = formatVerdict(verdict);
    expect(text).toContain('1 changed');
    expect(text).toContain('core-memory-3 messagesPerEntry: baseline 0.008, now 0.012');
  });

  test('a workload without a baseline entry fails and says how to record one', () => {
    const verdict = compareWithBaseline(baselineOf(1_000_000), [measurement(1_000_000, { name: 'new-workload' })]);
    expect(verdict.ok).toBe(false);
    expect(formatVerdict(verdict)).toContain('FAIL new-workload: no baseline for new-workload: record one on purpose with pnpm bench:baseline');
    expect(verdict.unmeasured).toEqual(['core-memory-3']);
  });

  test('other arguments than the baseline\'s fail: the counts are not comparable', () => {
    const verdict = compareWithBaseline(baselineOf(1_000_000), [measurement(1_000_000, { args: ['--batches', '200'] })]);
    expect(verdict.ok).toBe(false);
    expect(verdict.workloads[0]?.problems[0]).toMatch(/^arguments changed/);
  });

  test('wall-clock drift is shown against the probe and never fails the gate', () => {
    const slowWall = compareWithBaseline(baselineOf(1_000_000), [measurement(1_000_000, { wallMs: 2000, probeMs: 60 })]);
    expect(slowWall.ok).toBe(true);
    expect(slowWall.workloads[0]?.wallDeltaPercent).toBeCloseTo(900, 5);
    // A machine twice as slow today doubles both the workload and the probe: no drift.
    const slowMachine = compareWithBaseline(baselineOf(1_000_000), [measurement(1_000_000, { wallMs: 400, probeMs: 120 })]);
    expect(slowMachine.workloads[0]?.wallDeltaPercent).toBeCloseTo(0, 5);
  });

  test('a baseline round-trips through JSON and a broken one is refused', () => {
    const baseline = baselineOf(123);
    expect(validateBaseline(JSON.parse(JSON.stringify(baseline)), 'b.json')).toEqual(baseline);
    expect(() => validateBaseline({ ...baseline, workloads: { w: { ...baseline.workloads['core-memory-3'], instructions: -1 } } }, 'b.json')).toThrow(
      /b\.json: workloads\.w\.instructions must be a positive integer/,
    );
    expect(() => validateBaseline([], 'b.json')).toThrow(/not a JSON object/);
  });

  test('recording merges over the previous baseline, keeping other workloads', () => {
    const previous = baselineOf(100);
    const next = buildBaseline(previous, [measurement(200, { name: 'another' })], new Map(), { ...previous, recordedAt: '2026-02-01T00:00:00.000Z' });
    expect(Object.keys(next.workloads)).toEqual(['another', 'core-memory-3']);
    expect(next.workloads['core-memory-3']?.instructions).toBe(100);
    expect(next.workloads['another']?.instructions).toBe(200);
  });
});

const workload = checkWorkloads.find((w) => w.name === 'core-memory-3');
if (workload === undefined) throw new Error('check-workloads.ts lost core-memory-3');

/** Runs the gate workload natively (figures only; no valgrind). */
function figuresOf(plant: string | null, extraArgs: readonly string[]): Record<string, unknown> {
  const environment = workloadEnvironment({ ...process.env, RAFTLAB_PLANT_SLOWDOWN: plant ?? '' });
  const result = spawnSync(process.execPath, [(workload as { script: string }).script, ...extraArgs], { cwd: repositoryRoot, env: environment, encoding: 'utf8' });
  expect(result.stderr).toBe('');
  return parseFigures(result.stdout, 'core-memory-3');
}

describe('planted regressions in the real workload', () => {
  test('duplicate delivery changes messagesPerEntry, which the figure comparison catches', () => {
    const small = ['--batches', '5', '--election-trials', '2'];
    const clean = figuresOf(null, small);
    const planted = figuresOf('duplicate', small);
    expect(clean['messagesPerEntry']).toBe(0.008);
    expect(clean['checksum']).toBe(planted['checksum']);
    expect(diffFigures(clean, planted)).toEqual(['entryBytesPerEntry: baseline 42, now 84', 'messagesPerEntry: baseline 0.008, now 0.024']);
  });

  test('an unknown planted regression is refused rather than ignored', () => {
    const result = spawnSync(process.execPath, [workload.script], { env: { ...workloadEnvironment(), RAFTLAB_PLANT_SLOWDOWN: 'slow' }, encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('RAFTLAB_PLANT_SLOWDOWN=slow is not known; known: none, copy, duplicate');
  });
});

const hasValgrind = spawnSync('sh', ['-c', 'command -v valgrind'], { stdio: 'ignore' }).status === 0;
/** Why the valgrind test is skipped, or null when it runs. */
const valgrindSkipReason = !hasValgrind
  ? 'valgrind is not installed; apt-get install valgrind'
  : process.env['RAFTLAB_SKIP_VALGRIND'] === '1'
    ? 'RAFTLAB_SKIP_VALGRIND=1'
    : null;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'raftlab-check-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe.skipIf(valgrindSkipReason !== null)(`under valgrind${valgrindSkipReason === null ? '' : ` (skipped: ${valgrindSkipReason})`}`, () => {
  test('two clean runs repeat within 0.1%, and a planted per-entry copy fails the gate', async () => {
    // Small enough for ~10 s per run under valgrind; large enough that the planted copy is ~10% of the work.
    const tiny = { name: 'core-memory-3', script: workload.script, args: ['--batches', '30', '--election-trials', '2'] };
    const clean = workloadEnvironment({ PATH: process.env['PATH'] ?? '' });
    // Two at a time (the machine has two cores, and other test files run beside this one).
    const [first, planted] = await Promise.all([
      runUnderCachegrind(tiny, path.join(scratch, 'first'), clean),
      runUnderCachegrind(tiny, path.join(scratch, 'planted'), { ...clean, RAFTLAB_PLANT_SLOWDOWN: 'copy' }),
    ]);
    const second = await runUnderCachegrind(tiny, path.join(scratch, 'second'), clean);
    const spreadPercent = (Math.abs(first.instructions - second.instructions) / first.instructions) * 100;
    expect(spreadPercent).toBeLessThan(0.1);
    expect(second.figures).toEqual(first.figures);
    expect(planted.figures).toEqual(first.figures);

    const measure = (run: typeof first): Measurement => ({ name: tiny.name, args: tiny.args, instructions: run.instructions, figures: run.figures, wallMs: null, probeMs: null });
    const baseline = buildBaseline(null, [measure(first)], new Map(), { ...baselineOf(1), node: process.version });
    expect(compareWithBaseline(baseline, [measure(second)]).ok).toBe(true);
    const verdict = compareWithBaseline(baseline, [measure(planted)]);
    expect(verdict.ok).toBe(false);
    expect(verdict.workloads[0]?.deltaPercent).toBeGreaterThan(3);
  }, 180_000);
});
