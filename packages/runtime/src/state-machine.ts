/**
 * The state machine interface the runtime applies committed entries to, and the built-in machines:
 * the i64 sum (shared with the simulator) and a counter for benchmarks.
 */
import { I64SumMachine, type SumApplyStatus } from '@raftlab/core';

/**
 * A deterministic state machine. Every replica applies the same entries in the same order and
 * must reach the same state: no clocks, randomness or I/O inside apply.
 */
export interface StateMachine<Result = unknown> {
  /**
   * Applies the committed entry at `index`. `data` is a view into the log, valid only during the
   * call: copy what you keep. Returns the result handed to the proposer.
   */
  apply(index: number, data: Uint8Array): Result;
  /** Encodes the whole state (for log compaction and InstallSnapshot). */
  snapshot(): Uint8Array;
  /** Replaces the whole state with a snapshot's. */
  restore(data: Uint8Array): void;
}

/**
 * Counts applied entries and sums their first bytes (so applying cannot be optimized away). The
 * result of an apply is the count so far. For benchmarks.
 */
export class CounterMachine implements StateMachine<number> {
  /** Entries applied. */
  count = 0;
  /** Sum of the first byte of every entry, modulo 2^32. */
  checksum = 0;

  apply(_index: number, data: Uint8Array): number {
    this.count += 1;
    if (data.length > 0) this.checksum = (this.checksum + (data[0] as number)) >>> 0;
    return this.count;
  }

  snapshot(): Uint8Array {
    const bytes = new Uint8Array(16);
    const view = new DataView(bytes.buffer);
    view.setFloat64(0, this.count);
    view.setUint32(8, this.checksum);
    return bytes;
  }

  restore(data: Uint8Array): void {
    if (data.length !== 16) throw new RangeError(`counter snapshot of ${data.length} bytes, expected 16`);
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.count = view.getFloat64(0);
    this.checksum = view.getUint32(8);
  }
}

/** Result of applying an i64 sum command. */
export interface SumResult {
  /** The machine's value after the command. */
  readonly value: bigint;
  /** applied, invalid (not an i64: ignored), duplicate (a retry) or malformed (not a command). */
  readonly status: SumApplyStatus;
}

/** The i64 sum machine of the simulator, as a runtime state machine. */
export class SumStateMachine implements StateMachine<SumResult> {
  readonly machine = new I64SumMachine();

  apply(_index: number, data: Uint8Array): SumResult {
    const { status } = this.machine.apply(data);
    return { value: this.machine.value, status };
  }

  snapshot(): Uint8Array {
    return this.machine.snapshot();
  }

  restore(data: Uint8Array): void {
    this.machine.restore(data);
  }
}
