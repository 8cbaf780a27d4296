/**
 * The steps both storages share between "what is stored" and "what a RaftNode restores from", so that
 * MemoryStorage and WalStorage load the same state from the same saves.
 */
import { type HardState, type PersistedState, type Snapshot, assert } from '@raftlab/core';
import type { EntryLog } from './entry-log.js';
import type { StorageLogger } from './storage.js';

/** The hard state of a node that never persisted one. */
export const initialHardState: HardState = Object.freeze({ term: 0, vote: 0, commit: 0 });

/**
 * Applies a newer snapshot to a stored log (§7, "InstallSnapshot receiver" steps 6 and 7): if the log
 * holds the snapshot's last entry with the snapshot's term, the entries after it are kept and the rest
 * is released; otherwise the whole log is discarded.
 */
export function applySnapshotToLog(log: EntryLog, snapshot: Snapshot): 'kept-suffix' | 'discarded' {
  if (snapshot.index <= log.lastIndex && snapshot.index >= log.baseIndex && log.termAt(snapshot.index) === snapshot.term) {
    log.compactThrough(snapshot.index);
    return 'kept-suffix';
  }
  log.resetTo(snapshot.index, snapshot.term);
  return 'discarded';
}

/**
 * Builds the state to restore from. Two adjustments keep restore valid without weakening safety:
 *  - a hard state older than the snapshot's term (a crash between storing an installed snapshot and
 *    the hard state of the same Ready) is raised to that term with no vote: had the node voted in that
 *    term, the vote would have been persisted before it was sent, with the term;
 *  - a commit index past the last stored entry (possible only after a repair or an interrupted
 *    snapshot install dropped entries) is lowered to it: the commit index is volatile state (Figure 2)
 *    and the leader tells it again.
 */
export function persistedStateOf(
  hardState: HardState | null,
  snapshot: Snapshot | null,
  log: EntryLog,
  logger: StorageLogger | null,
): PersistedState {
  assert(log.baseIndex === (snapshot?.index ?? 0), () => `persistedStateOf: log base ${log.baseIndex} is not the snapshot index ${snapshot?.index ?? 0}`);
  let hard = hardState ?? initialHardState;
  if (snapshot !== null && snapshot.term > hard.term) {
    logger?.warn({ hardStateTerm: hard.term, snapshotTerm: snapshot.term }, 'hard state older than the snapshot: raising its term, with no vote');
    hard = { term: snapshot.term, vote: 0, commit: hard.commit };
  }
  if (hard.commit > log.lastIndex) {
    logger?.warn({ commit: hard.commit, lastIndex: log.lastIndex }, 'commit index past the last stored entry: lowering it');
    hard = { ...hard, commit: log.lastIndex };
  }
  return { hardState: hard, snapshot, entries: log.frames() };
}
