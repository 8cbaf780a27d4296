/**
 * The peers runner (benchmarks/src/peers.ts) runs etcd raft 3.4 and liferaft on raftlab's
 * reference workload and hands the bench lab either figures it has checked or a skip with a reason,
 * never an exception. These tests prove: a short real run yields, for every peer and variant,
 * positive per-run figures whose applied counts and checksums match an independent recomputation,
 * or a skip that says why; a machine without the etcd sources gets skipped etcd results naming the
 * package to install; and the report checker rejects planted faults (a wrong checksum, a missing
 * run, a wrong applied count, a non-3.4 version) instead of passing them on as figures.
 */
import { describe, expect, it } from 'vitest';
import { type PeerResult, etcdChecksum, parseEtcdReport, parseLiferaftReport, runPeers } from '../src/peers.js';

/** Σ (k XOR k·0x9E3779B97F4A7C15 mod 2^64) over k < count, mod 2^64, written out independently. */
function expectedEtcdChecksum(count: number): string {
  const modulus = 2n ** 64n;
  let sum = 0n;
  for (let k = 0; k < count; k++) {
    const sequence = BigInt(k);
    sum = (sum + (sequence ^ BigInt.asUintN(64, sequence * 11400714819323198485n))) % modulus;
  }
  return sum.toString(16).padStart(16, '0');
}

function etcdReportLine(overrides: { checksum?: string; figures?: number[]; applied?: number; raftVersion?: string } = {}): string {
  const applied = overrides.applied ?? 5000;
  const variant = (name: string): Record<string, unknown> => ({
    variant: name,
    entriesPerSecond: overrides.figures ?? [1000, 2000],
    appliedEntriesPerRun: applied,
    checksum: overrides.checksum ?? expectedEtcdChecksum(5000),
    messagesPerBatch: 8,
  });
  return JSON.stringify({ peer: 'etcd-raft', raftVersion: overrides.raftVersion ?? '3.4.23', goVersion: 'go1.19.8', variants: [variant('propose-each'), variant('one-message')] });
}

function liferaftReportLine(applied: number[], checksums: string[]): string {
  return JSON.stringify({
    peer: 'liferaft',
    liferaftVersion: '1.0.0',
    variants: [{ variant: 'command-each', entriesPerSecond: applied.map(() => 500), appliedEntriesPerRun: applied, checksums, repeatedCommits: applied.map(() => [0, 0, 0]) }],
  });
}

function expectOkOrExplainedSkip(result: PeerResult, runs: number): void {
  if (result.status === 'skipped') {
    expect(result.reason ?? '').not.toBe('');
    expect(result.entriesPerSecond).toEqual([]);
    return;
  }
  expect(result.reason).toBeUndefined();
  expect(result.batch).toBe(1000);
  expect(result.nodes).toBe(3);
  expect(result.entriesPerSecond).toHaveLength(runs);
  for (const figure of result.entriesPerSecond) {
    expect(Number.isFinite(figure)).toBe(true);
    expect(figure).toBeGreaterThan(0);
  }
}

describe('runPeers', () => {
  it('returns, for every peer and variant, checked figures or a skip that says why', async () => {
    const runs = 2;
    const etcdBatches = 20;
    const results = await runPeers({ quick: true, runs, etcdBatches, liferaftRunSeconds: 0.2 });
    expect(results.map((result) => `${result.peer}/${result.variant}`)).toEqual(['etcd-raft-3.4/propose-each', 'etcd-raft-3.4/one-message', 'liferaft/command-each']);
    for (const result of results) {
      expectOkOrExplainedSkip(result, runs);
      if (result.status !== 'ok') continue;
      if (result.peer === 'etcd-raft-3.4') {
        expect(result.meta['appliedEntriesPerRun']).toBe(etcdBatches * 1000);
        expect(result.meta['checksum']).toBe(expectedEtcdChecksum(etcdBatches * 1000));
        expect(String(result.meta['raftVersion'])).toMatch(/^3\.4\./);
      } else {
        const applied = result.meta['appliedEntriesPerRun'];
        expect(Array.isArray(applied)).toBe(true);
        for (const count of applied as number[]) expect(count % 1000).toBe(0);
      }
    }
  });

  it('reports etcd raft as skipped, naming the package to install, when its sources are missing', async () => {
    const results = await runPeers({ quick: true, peers: ['etcd-raft-3.4'], gocodeDirectory: '/nonexistent-gocode' });
    expect(results).toHaveLength(2);
    for (const result of results) {
      expect(result.status).toBe('skipped');
      // Without Go at all the reason names golang-go instead; either way it says what to install.
      expect(result.reason).toMatch(/golang-etcd-server-dev|golang-go/);
    }
  });
});

describe('the etcd report checker', () => {
  it('agrees with an independent recomputation of the checksum', () => {
    expect(etcdChecksum(5000)).toBe(expectedEtcdChecksum(5000));
    expect(etcdChecksum(0)).toBe('0000000000000000');
  });

  it('accepts a report whose counts and checksum match', () => {
    const results = parseEtcdReport(etcdReportLine(), { batches: 5, runs: 2 });
    expect(results.map((result) => result.status)).toEqual(['ok', 'ok']);
    expect(results[0]?.entriesPerSecond).toEqual([1000, 2000]);
    expect(results[0]?.meta['medianEntriesPerSecond']).toBe(1500);
  });

  it('rejects a planted wrong checksum', () => {
    const results = parseEtcdReport(etcdReportLine({ checksum: expectedEtcdChecksum(4999) }), { batches: 5, runs: 2 });
    for (const result of results) {
      expect(result.status).toBe('skipped');
      expect(result.reason).toMatch(/checksum/);
    }
  });

  it('rejects a missing run, a wrong applied count and a version other than 3.4', () => {
    expect(parseEtcdReport(etcdReportLine({ figures: [1000] }), { batches: 5, runs: 2 })[0]?.reason).toMatch(/expected 2 positive figures/);
    expect(parseEtcdReport(etcdReportLine({ applied: 4000 }), { batches: 5, runs: 2 })[0]?.reason).toMatch(/applied 4000/);
    expect(parseEtcdReport(etcdReportLine({ raftVersion: '3.5.0' }), { batches: 5, runs: 2 })[0]?.reason).toMatch(/3\.4/);
    expect(parseEtcdReport('not json', { batches: 5, runs: 2 })[0]?.status).toBe('skipped');
  });
});

describe('the liferaft report checker', () => {
  it('accepts whole batches whose checksum is the sum of the applied sequence numbers', () => {
    const result = parseLiferaftReport(liferaftReportLine([1000, 2000], ['499500', '1999000']), { runs: 2 });
    expect(result.status).toBe('ok');
  });

  it('rejects a planted wrong checksum and a partial batch', () => {
    expect(parseLiferaftReport(liferaftReportLine([1000, 2000], ['499500', '1999001']), { runs: 2 }).reason).toMatch(/checksum/);
    expect(parseLiferaftReport(liferaftReportLine([1000, 1500], ['499500', '1124250']), { runs: 2 }).reason).toMatch(/whole batches/);
  });
});
