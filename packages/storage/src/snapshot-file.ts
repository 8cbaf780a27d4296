/**
 * Snapshot files: `snapshot-<index>-<term>.snap` (both zero-padded to 16 digits so names sort), one per
 * stored snapshot (§7: last included index and term, the membership, the state machine's bytes).
 *
 *    0       4         8         16        24          28        32           40            40 + 8n
 *    +-------+---------+---------+---------+-----------+---------+------------+-------------+-----------+------+
 *    | magic | version | index   | term    | peerCount | dataCrc | dataLength | peers       | headerCrc | data |
 *    | u32   | u32     | u64     | u64     | u32       | u32     | u64        | u64 x n     | u32       |      |
 *    +-------+---------+---------+---------+-----------+---------+------------+-------------+-----------+------+
 *
 *    magic "RLSN"; integers little-endian; dataCrc is the CRC32C of data; headerCrc the CRC32C of every
 *    header byte before it. The file name must agree with index and term.
 *
 * Written atomically: to `<name>.tmp`, fdatasync, rename over `<name>`, fsync of the directory. A crash
 * leaves either no file or the whole file under its final name; a leftover `.tmp` is an unfinished
 * write and is removed when the storage opens.
 */
import type { Snapshot } from '@raftlab/core';
import { crc32c } from './crc32c.js';
import type { StorageFileSystem } from './file-system.js';
import { readU32, readU64, writeU32, writeU64 } from './record.js';

/** "RLSN" as a little-endian u32. */
export const snapshotMagic = 0x4e534c52;

/** Version of the snapshot file format. */
export const snapshotVersion = 1;

const fixedHeaderBytes = 40;

/** Suffix of a snapshot being written. */
export const temporarySuffix = '.tmp';

const namePattern = /^snapshot-(\d{16})-(\d{16})\.snap$/;

/** File name of the snapshot at (index, term). */
export function snapshotFileName(index: number, term: number): string {
  return `snapshot-${pad16(index)}-${pad16(term)}.snap`;
}

/** Index and term from a snapshot file name, or null when it is not one. */
export function parseSnapshotFileName(name: string): { index: number; term: number } | null {
  const match = namePattern.exec(name);
  if (match === null) return null;
  return { index: Number(match[1]), term: Number(match[2]) };
}

/** A number zero-padded to 16 decimal digits. */
export function pad16(value: number): string {
  return String(value).padStart(16, '0');
}

/** Header bytes of a snapshot with `peerCount` peers. */
export function snapshotHeaderBytes(peerCount: number): number {
  return fixedHeaderBytes + 8 * peerCount + 4;
}

/** The header of a snapshot file (the data follows it unchanged). */
export function encodeSnapshotHeader(snapshot: Snapshot): Uint8Array {
  const header = new Uint8Array(snapshotHeaderBytes(snapshot.peers.length));
  writeU32(header, 0, snapshotMagic);
  writeU32(header, 4, snapshotVersion);
  writeU64(header, 8, snapshot.index);
  writeU64(header, 16, snapshot.term);
  writeU32(header, 24, snapshot.peers.length);
  writeU32(header, 28, crc32c(snapshot.data));
  writeU64(header, 32, snapshot.data.length);
  let at = fixedHeaderBytes;
  for (const peer of snapshot.peers) {
    writeU64(header, at, peer);
    at += 8;
  }
  writeU32(header, at, crc32c(header, 0, at));
  return header;
}

/** A snapshot file's contents, or where and why it is damaged. */
export type DecodedSnapshot =
  | { readonly ok: true; readonly snapshot: Snapshot }
  | { readonly ok: false; readonly offset: number; readonly reason: string };

/** Validates and decodes a snapshot file. `data` is a view of `bytes` (no copy). */
export function decodeSnapshotFile(bytes: Uint8Array, expected: { index: number; term: number }): DecodedSnapshot {
  if (bytes.length < fixedHeaderBytes + 4) return { ok: false, offset: 0, reason: `file of ${bytes.length} bytes is shorter than a snapshot header` };
  if (readU32(bytes, 0) !== snapshotMagic) return { ok: false, offset: 0, reason: 'not a snapshot file (bad magic)' };
  const version = readU32(bytes, 4);
  if (version !== snapshotVersion) return { ok: false, offset: 4, reason: `unsupported snapshot version ${version}` };
  const peerCount = readU32(bytes, 24);
  const headerBytes = snapshotHeaderBytes(peerCount);
  if (headerBytes > bytes.length) return { ok: false, offset: 24, reason: `peer count ${peerCount} runs past the end of the file` };
  const headerCrcAt = headerBytes - 4;
  if (crc32c(bytes, 0, headerCrcAt) !== readU32(bytes, headerCrcAt)) return { ok: false, offset: headerCrcAt, reason: 'header crc32c mismatch' };
  const index = readU64(bytes, 8);
  const term = readU64(bytes, 16);
  const dataLength = readU64(bytes, 32);
  if (index !== expected.index || term !== expected.term) {
    return { ok: false, offset: 8, reason: `header says index ${index} term ${term}, file name says index ${expected.index} term ${expected.term}` };
  }
  if (dataLength !== bytes.length - headerBytes) {
    return { ok: false, offset: 32, reason: `data length ${dataLength} but ${bytes.length - headerBytes} bytes follow the header` };
  }
  const data = bytes.subarray(headerBytes);
  if (crc32c(data) !== readU32(bytes, 28)) return { ok: false, offset: headerBytes, reason: 'data crc32c mismatch' };
  const peers: number[] = [];
  for (let i = 0; i < peerCount; i++) {
    const peer = readU64(bytes, fixedHeaderBytes + 8 * i);
    if (peer < 1) return { ok: false, offset: fixedHeaderBytes + 8 * i, reason: `peer ${i} has invalid id ${peer}` };
    peers.push(peer);
  }
  return { ok: true, snapshot: { index, term, peers, data } };
}

/** What writing a snapshot file cost. */
export interface SnapshotWrite {
  readonly bytes: number;
  readonly syncMs: number;
  readonly dataSyncs: number;
  readonly directorySyncs: number;
}

/**
 * Writes `snapshot` to `directory` atomically (temp file, fdatasync, rename, directory fsync); with
 * `sync` false (policy none) it skips both syncs and is atomic against a process crash only.
 */
export async function writeSnapshotFile(files: StorageFileSystem, directory: string, snapshot: Snapshot, sync: boolean): Promise<SnapshotWrite> {
  const name = snapshotFileName(snapshot.index, snapshot.term);
  const temporary = `${directory}/${name}${temporarySuffix}`;
  const header = encodeSnapshotHeader(snapshot);
  const fd = await files.open(temporary, 'replace');
  let syncMs = 0;
  try {
    const written = await files.writev(fd, [header, snapshot.data]);
    if (written !== header.length + snapshot.data.length) {
      throw new Error(`short write: ${written} of ${header.length + snapshot.data.length} bytes to ${temporary}`);
    }
    if (sync) {
      const start = performance.now();
      await files.syncData(fd);
      syncMs = performance.now() - start;
    }
  } finally {
    await files.close(fd);
  }
  await files.rename(temporary, `${directory}/${name}`);
  if (sync) await files.syncDirectory(directory);
  return { bytes: header.length + snapshot.data.length, syncMs, dataSyncs: sync ? 1 : 0, directorySyncs: sync ? 1 : 0 };
}
