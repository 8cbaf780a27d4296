/**
 * Regression: an entry that can never fit the log ring is refused as too-large, not as busy. With
 * a small logBytesMax and the default entryBytesMax (8 MiB), a leader used to answer busy to a
 * proposal larger than the whole ring, forever, so its client retried forever (found by the
 * simulator with 1-2 KiB rings). The default entry bound now shrinks to what the ring can hold,
 * and an explicit entry bound that cannot fit is a config error.
 */
import { describe, expect, test } from 'vitest';
import { ConfigError, RaftNode, defaultBounds, frameHeaderBytesMax, resolveConfig } from '../src/index.js';

function singleNodeLeader(logBytesMax: number): RaftNode {
  const node = new RaftNode({ id: 1, peers: [1], verify: true, bounds: { logBytesMax } });
  for (let i = 0; i < 100 && node.role !== 'leader'; i++) {
    node.tick();
    while (node.hasReady()) node.advance(node.ready());
  }
  expect(node.role).toBe('leader');
  return node;
}

describe('entries and the ring bound', () => {
  test('the default entry bound shrinks to what a small ring can hold', () => {
    expect(resolveConfig({ id: 1, peers: [1], bounds: { logBytesMax: 2048 } }).bounds.entryBytesMax).toBe(2048 - frameHeaderBytesMax);
    expect(resolveConfig({ id: 1, peers: [1] }).bounds.entryBytesMax).toBe(defaultBounds.entryBytesMax);
  });

  test('an explicit entry bound larger than the ring is a config error naming both', () => {
    expect(() => resolveConfig({ id: 1, peers: [1], bounds: { logBytesMax: 2048, entryBytesMax: 4096 } })).toThrow(ConfigError);
    expect(() => resolveConfig({ id: 1, peers: [1], bounds: { logBytesMax: 2048, entryBytesMax: 4096 } })).toThrow(/entryBytesMax.*logBytesMax 2048/);
  });

  test('a proposal larger than the ring is refused as too-large, one that fits is appended', () => {
    const leader = singleNodeLeader(2048);
    expect(leader.propose(new Uint8Array(3000))).toMatchObject({ ok: false, reason: 'too-large' });
    expect(leader.propose(new Uint8Array(1000))).toMatchObject({ ok: true, status: 'appended' });
  });
});
