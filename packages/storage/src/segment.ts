/**
 * Segment files: `<sequence>-<firstIndex>.wal`, both zero-padded to 16 decimal digits, for example
 * `0000000000000003-0000000000004097.wal`. The sequence orders segments and must have no gaps among
 * the files present; firstIndex is the index the next entry was expected to have when the segment was
 * created (suffix replacement can later write lower indexes into it), a hint for humans and tools.
 */
import { pad16 } from './snapshot-file.js';

const namePattern = /^(\d{16})-(\d{16})\.wal$/;

/** File name of a segment. */
export function segmentFileName(sequence: number, firstIndex: number): string {
  return `${pad16(sequence)}-${pad16(firstIndex)}.wal`;
}

/** Sequence and first index from a segment file name, or null when it is not one. */
export function parseSegmentFileName(name: string): { sequence: number; firstIndex: number } | null {
  const match = namePattern.exec(name);
  if (match === null) return null;
  return { sequence: Number(match[1]), firstIndex: Number(match[2]) };
}

/** What the writer and recovery know about a segment on disk. */
export interface SegmentInfo {
  readonly sequence: number;
  /** File name (no directory). */
  readonly name: string;
  /** Bytes in the file. */
  bytes: number;
  /** Highest log index any record in it mentions (entries or an installed snapshot); 0 when none. */
  maxIndex: number;
}
