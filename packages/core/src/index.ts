/**
 * @raftlab/core: a pure, deterministic, zero-copy Raft state machine.
 *
 *   const node = new RaftNode({ id: 1, peers: [1, 2, 3] });
 *   node.tick(); node.step(message); node.propose(bytes);
 *   if (node.hasReady()) { const rd = node.ready(); persist(rd); send(rd.messages); apply(rd.committedEntries); node.advance(rd); }
 */
export { AssertionError, assert, unreachable } from './assert.js';
export {
  type HardState,
  type PersistedState,
  type PlantedBugs,
  type RaftBounds,
  type RaftConfig,
  type ResolvedConfig,
  defaultBounds,
  resolveConfig,
} from './config.js';
export { describeMessage, describeReady } from './describe.js';
export {
  type EntryFrames,
  type EntryKind,
  type EntryRange,
  EntryReader,
  FrameHeader,
  copyFrames,
  encodeEntry,
  entryKindCode,
  frameBytes,
  frameHeaderBytesMax,
  framesOf,
  noEntries,
  termMax,
  validateFrames,
  writeFrame,
} from './entry.js';
export { ConfigError, RaftError, type RaftErrorCode } from './errors.js';
export * from './i64.js';
export { Inflights } from './inflights.js';
export * from './message.js';
export { Prng } from './prng.js';
export { Progress, type ProgressState } from './progress.js';
export { majority, quorumIndex, voteResult, type VoteResult } from './quorum.js';
export { type LogView, type ProgressStatus, RaftNode } from './raft.js';
export type { ProposeRefusal, ProposeResult, Ready, ReadState, RequestRefusal, RequestResult, Role, SoftState } from './ready.js';
export { LogRing, type LogRingOptions, logBytesMaxDefault } from './ring.js';
