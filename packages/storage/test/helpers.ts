/**
 * Shared test helpers: temporary directories under os.tmpdir() (removed by the tests), entry runs
 * encoded the way the core encodes them, a recording logger, a file system wrapper that counts and
 * gates operations, and a plain description of a PersistedState for comparisons.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  type EntryRange,
  EntryReader,
  type HardState,
  type PersistedState,
  type Snapshot,
  encodeEntry,
  framesOf,
} from '@raftlab/core';
import type { ReadyToSave, StorageFileSystem, StorageLogger } from '../src/index.js';
import { nodeFileSystem } from '../src/index.js';

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();

/** A fresh directory under os.tmpdir(); remove it with removeDirectory. */
export function temporaryDirectory(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'raftlab-storage-'));
}

export function removeDirectory(directory: string): void {
  fs.rmSync(directory, { recursive: true, force: true });
}

/** Entries [firstIndex, firstIndex + terms.length) with the given terms and data `<tag>:<index>`. */
export function entriesOf(firstIndex: number, terms: readonly number[], tag = 'e', dataBytes = 0): EntryRange {
  const frames = terms.map((term, i) => {
    const text = `${tag}:${firstIndex + i}`;
    const data = dataBytes > 0 ? padded(text, dataBytes) : encoder.encode(text);
    return encodeEntry(term, 'normal', data);
  });
  return { ...framesOf(frames), firstIndex };
}

function padded(text: string, length: number): Uint8Array {
  const data = new Uint8Array(Math.max(length, text.length));
  data.set(encoder.encode(text));
  return data;
}

/** The same entries split over two slices (like a wrapped ring). */
export function splitInTwo(range: EntryRange, firstCount: number): EntryRange {
  const slice = range.slices[0] as Uint8Array;
  const reader = new EntryReader().reset(range);
  let cut = 0;
  for (let i = 0; i < firstCount && reader.next(); i++) cut = reader.frameOffset + reader.frameLength;
  return { ...range, slices: [slice.subarray(0, cut), slice.subarray(cut)] };
}

/** A Ready's BEFORE part. */
export function readyOf(parts: { hardState?: HardState; entries?: EntryRange; snapshot?: Snapshot; mustSync?: boolean }): ReadyToSave {
  const entries = parts.entries ?? { count: 0, slices: [], byteLength: 0, firstIndex: 1 };
  return {
    hardState: parts.hardState ?? null,
    entries,
    snapshot: parts.snapshot ?? null,
    mustSync: parts.mustSync ?? (entries.count > 0 || parts.snapshot !== undefined || parts.hardState !== undefined),
  };
}

export function snapshotOf(index: number, term: number, text = `state@${index}`, peers: readonly number[] = [1, 2, 3]): Snapshot {
  return { index, term, peers, data: encoder.encode(text) };
}

/** A logger that keeps what it is told. */
export function recordingLogger(): StorageLogger & { readonly warnings: { details: object; message: string }[] } {
  const warnings: { details: object; message: string }[] = [];
  return {
    warnings,
    warn(details, message) {
      warnings.push({ details, message });
    },
  };
}

/** A plain, comparable description of a persisted state: entries as "index:term:data". */
export function describeState(state: PersistedState | null): unknown {
  if (state === null) return null;
  const snapshot = state.snapshot ?? null;
  const entries: string[] = [];
  if (state.entries !== undefined) {
    const reader = new EntryReader().reset(state.entries);
    let index = (snapshot?.index ?? 0) + 1;
    while (reader.next()) entries.push(`${index++}:${reader.term}:${reader.kind}:${Buffer.from(reader.data()).toString('hex')}`);
  }
  return {
    hardState: { ...state.hardState },
    snapshot: snapshot === null ? null : { index: snapshot.index, term: snapshot.term, peers: [...snapshot.peers], data: Buffer.from(snapshot.data).toString('hex') },
    entries,
  };
}

/** Calls counted by countingFileSystem. */
export interface FileSystemCounts {
  writev: number;
  syncData: number;
  syncDirectory: number;
  open: number;
}

/** Wraps a file system to count calls; `hooks` may delay or fail them. */
export function countingFileSystem(
  hooks: { beforeSyncData?: () => Promise<void>; beforeWritev?: (buffers: readonly Uint8Array[]) => Promise<void> } = {},
  inner: StorageFileSystem = nodeFileSystem,
): { files: StorageFileSystem; counts: FileSystemCounts } {
  const counts: FileSystemCounts = { writev: 0, syncData: 0, syncDirectory: 0, open: 0 };
  const files: StorageFileSystem = {
    ...inner,
    async open(file, mode) {
      counts.open += 1;
      return inner.open(file, mode);
    },
    async writev(fd, buffers) {
      counts.writev += 1;
      await hooks.beforeWritev?.(buffers);
      return inner.writev(fd, buffers);
    },
    async syncData(fd) {
      await hooks.beforeSyncData?.();
      counts.syncData += 1;
      return inner.syncData(fd);
    },
    async syncDirectory(directory) {
      counts.syncDirectory += 1;
      return inner.syncDirectory(directory);
    },
  };
  return { files, counts };
}

/** Names of the segment files in a directory, in order. */
export function segmentFiles(directory: string): string[] {
  return fs.readdirSync(directory).filter((name) => name.endsWith('.wal')).sort();
}

/** Names of the snapshot files (and leftovers) in a directory. */
export function snapshotFiles(directory: string): string[] {
  return fs.readdirSync(directory).filter((name) => name.startsWith('snapshot-')).sort();
}
