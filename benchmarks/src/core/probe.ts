/**
 * The speed-of-light probe: the least work any 3-node replicated commit must do for a batch of
 * entries, measured in the same run as the real benchmarks so their wall-clock figures can be read
 * as a share of it (a noisy machine slows both). Per batch: encode every entry once into a buffer
 * (the leader's append), copy that buffer to two followers (replication), and apply every entry on
 * all three (scan each frame and read its data). No consensus, no messages, no bookkeeping.
 */
import { FrameHeader, frameBytes, writeFrame } from '@raftlab/core';

/** Outcome of a probe run. */
export interface ProbeResult {
  /** Entries per second through encode + 2 copies + 3 applies, one sample per timed slice. */
  readonly samples: number[];
  readonly checksum: number;
}

/** Runs the probe for about `durationMs`, in slices of `sliceBatches` batches. */
export function runProbe(options: { batch?: number; payloadBytes?: number; durationMs?: number; nodes?: number } = {}): ProbeResult {
  const batch = options.batch ?? 1000;
  const payloadBytes = options.payloadBytes ?? 16;
  const followers = (options.nodes ?? 3) - 1;
  const durationMs = options.durationMs ?? 1000;
  const payload = new Uint8Array(payloadBytes).fill(7);
  const frameLength = frameBytes(1, payloadBytes);
  const leader = new Uint8Array(frameLength * batch);
  const replicas = Array.from({ length: followers }, () => new Uint8Array(leader.length));
  const header = new FrameHeader();
  let checksum = 0;
  const apply = (bytes: Uint8Array): void => {
    let at = 0;
    while (at < bytes.length) {
      const length = header.parse(bytes, at, bytes.length);
      checksum = (checksum + (bytes[at + header.headerLength] as number)) | 0;
      at += length;
    }
  };
  const samples: number[] = [];
  const sliceBatches = 100;
  const end = performance.now() + durationMs;
  // Warm up, then time slices.
  for (let round = -3; round < 1_000_000; round++) {
    const start = performance.now();
    for (let b = 0; b < sliceBatches; b++) {
      let at = 0;
      for (let i = 0; i < batch; i++) at += writeFrame(leader, at, 1, 0, payload);
      for (const replica of replicas) replica.set(leader);
      apply(leader);
      for (const replica of replicas) apply(replica);
    }
    const elapsed = performance.now() - start;
    if (round >= 0) samples.push((sliceBatches * batch * 1000) / elapsed);
    if (performance.now() > end && samples.length >= 5) break;
  }
  return { samples, checksum };
}
