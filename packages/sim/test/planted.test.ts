/**
 * The checkers catch real bugs. Each test plants one known bug (three in the core through
 * config.plantedBugs, three in the simulator's driver), runs seeds from 1 upward with the core's own
 * invariant checks off (so only the simulator's checkers can notice), and requires a violation of
 * the expected kind within a fixed number of seeds; the seed that caught it is then rerun without
 * the bug and must pass, so the catch is the bug's doing. The bounds are a few times the seed at
 * which each bug is first caught today.
 */
import { describe, expect, test } from 'vitest';
import { type FaultProfile, type PlantedBugName, type SeedOptions, type SeedResult, type ViolationKind, runSeed } from '../src/index.js';

interface Catch {
  readonly seed: number;
  readonly result: SeedResult;
}

/** Runs seeds 1..seedsMax with `bug` planted until one reports a violation of an accepted kind. */
function firstCatch(bug: PlantedBugName, seedsMax: number, kinds: readonly ViolationKind[], extra: Partial<SeedOptions> = {}): Catch | null {
  for (let seed = 1; seed <= seedsMax; seed++) {
    const result = runSeed({ seed, planted: [bug], verify: false, ...extra });
    if (result.violation !== null && kinds.includes(result.violation.kind)) return { seed, result };
  }
  return null;
}

function expectCaught(bug: PlantedBugName, seedsMax: number, kinds: readonly ViolationKind[], extra: Partial<SeedOptions> = {}): Catch {
  const caught = firstCatch(bug, seedsMax, kinds, extra);
  expect(caught, `${bug} not caught within ${seedsMax} seeds`).not.toBeNull();
  const { seed } = caught as Catch;
  // The same seed without the bug is clean: the violation is the bug's doing.
  const clean = runSeed({ seed, verify: false, ...extra });
  expect(clean.violation).toBeNull();
  expect(clean.liveness).toBeNull();
  return caught as Catch;
}

/**
 * Figure 8's ground: three nodes, one-entry appends, and nodes that crash right after syncing, so
 * leaders leave divergent uncommitted tails behind and new leaders bring followers up to date one
 * old entry at a time.
 */
function figure8(profile: FaultProfile): FaultProfile {
  return {
    ...profile,
    faults: { ...profile.faults, crashAfterSyncRate: 0.3, crashRate: 0.05, downTicksMax: 5, downCountMax: 1 },
    node: { ...profile.node, preVote: false, bounds: { ...profile.node.bounds, appendCountMax: 1, inflightCountMax: 1 } },
    workload: { ...profile.workload, commandRate: 1, clientCount: 4 },
  };
}

describe('planted bugs are caught', () => {
  test('voteTwice (granting a second vote in a term, §5.2) is caught by election safety', () => {
    const { result } = expectCaught('voteTwice', 20, ['election-safety']);
    expect(result.violation?.message).toMatch(/voted for \d+ and then for \d+|both leaders/);
  });

  test('forgetVoteOnRestart (votedFor not persisted, §5.2 and Figure 2) is caught by election safety', () => {
    const { result } = expectCaught('forgetVoteOnRestart', 30, ['election-safety']);
    expect(result.violation?.message).toMatch(/forgot its vote|voted for \d+ and then|both leaders/);
  });

  test('voteWithoutLogCheck (no up-to-date check, §5.4.1) is caught by leader completeness', () => {
    expectCaught('voteWithoutLogCheck', 60, ['leader-completeness', 'log-matching', 'state-machine-safety']);
  });

  test('commitOlderTerms (committing by counting, Figure 8) is caught on its own ground', () => {
    expectCaught('commitOlderTerms', 60, ['leader-completeness', 'state-machine-safety'], { nodes: { min: 3, max: 3 }, adjustProfile: figure8 });
  });

  test('commitOlderTerms is caught with the default fault profiles too', () => {
    expectCaught('commitOlderTerms', 250, ['leader-completeness', 'state-machine-safety']);
  });

  test('keepEntryViews (queued AppendEntries keep ring views, the zero-copy hazard) is caught', () => {
    const { result } = expectCaught('keepEntryViews', 30, ['malformed-entry', 'log-matching', 'state-machine-safety', 'leader-completeness']);
    expect(result.violation?.message).toMatch(/malformed|differ/);
  });

  test('ackBeforeSync (acknowledging before the write is synced, the Ready contract) is caught once crashes lose unsynced writes', () => {
    const kinds: ViolationKind[] = ['leader-completeness', 'election-safety', 'state-machine-safety', 'log-matching'];
    const { seed, result } = expectCaught('ackBeforeSync', 150, kinds);
    expect(result.violation?.message).toMatch(/lacks committed|both leaders|differ|voted for/);
    // The same seed with the same bug but disks that never lose a write: the catch needs the fault.
    const durable = runSeed({ seed, planted: ['ackBeforeSync'], verify: false, adjustProfile: (profile) => ({ ...profile, faults: { ...profile.faults, storageFaults: false } }) });
    expect(durable.violation).toBeNull();
  });

  test('keepEntryViews is caught by log matching even when nothing validates inbound frames', () => {
    expectCaught('keepEntryViews', 200, ['log-matching', 'state-machine-safety', 'leader-completeness'], { validateInbound: false });
  });
});
