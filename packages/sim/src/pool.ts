/**
 * Runs many seeds, in this thread or spread over worker threads. Seeds are independent and each is
 * deterministic, so the results (returned in seed order) do not depend on how many workers ran them.
 */
import { Worker } from 'node:worker_threads';
import type { PlantedBugName } from './cluster.js';
import { type NodeRange, type SeedResult, runSeed } from './run.js';

/** What every seed of a batch shares. */
export interface SeedBatch {
  readonly seeds: readonly number[];
  readonly nodes: NodeRange;
  readonly planted: readonly PlantedBugName[];
  /** The core's own invariant checks after every input. */
  readonly verify: boolean;
}

/** A worker's instructions (posted once) and its answers (one per seed). */
export interface WorkerRequest {
  readonly seed: number;
  readonly nodes: NodeRange;
  readonly planted: readonly PlantedBugName[];
  readonly verify: boolean;
}

/** Runs `batch` on `workers` threads (1: this thread), calling `onResult` as each seed finishes. */
export async function runSeeds(batch: SeedBatch, workers: number, onResult: (result: SeedResult) => void): Promise<SeedResult[]> {
  const results = new Map<number, SeedResult>();
  if (workers <= 1 || batch.seeds.length <= 1) {
    for (const seed of batch.seeds) {
      const result = runSeed({ seed, nodes: batch.nodes, planted: batch.planted, verify: batch.verify });
      results.set(seed, result);
      onResult(result);
      // Let the event loop breathe so progress output and signals get through.
      await new Promise((resolve) => setImmediate(resolve));
    }
    return batch.seeds.map((seed) => results.get(seed) as SeedResult);
  }
  const queue = [...batch.seeds];
  const count = Math.min(workers, queue.length);
  await Promise.all(
    Array.from({ length: count }, async () => {
      const worker = new Worker(new URL('./worker.js', import.meta.url));
      try {
        while (queue.length > 0) {
          const seed = queue.shift() as number;
          const request: WorkerRequest = { seed, nodes: batch.nodes, planted: batch.planted, verify: batch.verify };
          const result = await new Promise<SeedResult>((resolve, reject) => {
            const onMessage = (message: SeedResult): void => {
              worker.off('error', onError);
              resolve(message);
            };
            const onError = (error: Error): void => {
              worker.off('message', onMessage);
              reject(error);
            };
            worker.once('message', onMessage);
            worker.once('error', onError);
            worker.postMessage(request);
          });
          results.set(seed, result);
          onResult(result);
        }
      } finally {
        await worker.terminate();
      }
    }),
  );
  return batch.seeds.map((seed) => results.get(seed) as SeedResult);
}
