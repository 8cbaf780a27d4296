/**
 * The disk's own cost of durability, measured in the same run as a suite that depends on it: a
 * small append followed by fdatasync, on the temporary directory's file system. The HTTP and WAL
 * suites report their figures beside it.
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Microseconds per write + fdatasync of a 128-byte append, `count` samples in order. */
export function fsyncProbeMicros(count = 200): number[] {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'raftlab-fsync-'));
  const fd = openSync(path.join(directory, 'probe'), 'w');
  const bytes = Buffer.alloc(128, 1);
  const samples: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      writeSync(fd, bytes);
      fdatasyncSync(fd);
      samples.push((performance.now() - started) * 1000);
    }
  } finally {
    closeSync(fd);
    rmSync(directory, { recursive: true, force: true });
  }
  return samples;
}
