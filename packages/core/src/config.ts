/**
 * RaftNode configuration, resolved and validated once at the edge: every bad value throws a
 * ConfigError naming the field. After resolution the core trusts it.
 */
import { type EntryFrames, frameHeaderBytesMax } from './entry.js';
import { ConfigError } from './errors.js';
import type { NodeId, Snapshot } from './message.js';
import { logBytesMaxDefault } from './ring.js';

/** What must survive a restart (§5, Figure 2: currentTerm, votedFor, log; plus commit). */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

/** The persisted state a restarting node resumes from. */
export interface PersistedState {
  readonly hardState: HardState;
  /** The latest snapshot, when the log was compacted. */
  readonly snapshot?: Snapshot | null;
  /** Entries after the snapshot (or from index 1), as persisted. */
  readonly entries?: EntryFrames;
  /** Index the state machine has already applied (default: the snapshot's index). */
  readonly applied?: number;
}

/** Named bounds; every queue, batch and buffer in the core has one. */
export interface RaftBounds {
  /** AppendEntries messages in flight per follower. */
  readonly inflightCountMax: number;
  /** Entry bytes in flight per follower. */
  readonly inflightBytesMax: number;
  /** Entry bytes in one AppendEntries message. */
  readonly appendBytesMax: number;
  /** Entries in one AppendEntries message. */
  readonly appendCountMax: number;
  /** Data bytes the leader holds uncommitted before `propose` answers busy. */
  readonly uncommittedBytesMax: number;
  /** Data bytes of one entry. */
  readonly entryBytesMax: number;
  /** Committed entry bytes handed out in one Ready. */
  readonly applyBytesMax: number;
  /** Byte capacity of the log ring. */
  readonly logBytesMax: number;
  /** ReadIndex requests pending at the leader. */
  readonly readsPendingMax: number;
  /** Proposals a follower forwards in one message. */
  readonly forwardCountMax: number;
  /**
   * Snapshot data bytes in one InstallSnapshot chunk (§7): a snapshot larger than this travels in
   * several messages, one in flight per follower, so it fits a transport's frame bound.
   */
  readonly snapshotChunkBytesMax: number;
}

/** Configuration as given by the embedding code; unset fields take the defaults. */
export interface RaftConfig {
  /** This node's id. */
  readonly id: NodeId;
  /** Every voter, this node included. */
  readonly peers: readonly NodeId[];
  /** Base election timeout; each round draws from [electionTimeoutTicks, 2 * electionTimeoutTicks). */
  readonly electionTimeoutTicks?: number;
  /** Ticks between leader heartbeats; below electionTimeoutTicks. */
  readonly heartbeatTicks?: number;
  /** Pre-vote (thesis §9.6): a node campaigns only if it could win. Default on. */
  readonly preVote?: boolean;
  /** Check-quorum (thesis §6.2): a leader not hearing from a quorum for an election timeout steps down. Default on. */
  readonly checkQuorum?: boolean;
  /** Followers forward proposals to the leader (default) or refuse them with its id. */
  readonly forwardToLeader?: boolean;
  /** Followers forward ReadIndex requests to the leader (default: follower reads) or refuse with its id. */
  readonly forwardReads?: boolean;
  /** Seed of the PRNG behind election timeouts (default: the id). */
  readonly seed?: number;
  /** Run checkInvariants after every step, tick and advance (on in tests and the simulator). */
  readonly verify?: boolean;
  /** Bounds; unset ones take the defaults. */
  readonly bounds?: Partial<RaftBounds>;
  /** State to resume from after a restart. */
  readonly restore?: PersistedState | null;
  /**
   * Test-only switches that plant known bugs, so tests can prove the simulator's checkers catch
   * them. Never set outside tests.
   */
  readonly plantedBugs?: Partial<PlantedBugs>;
}

/** Bugs a test can plant to prove that a checker catches them. */
export interface PlantedBugs {
  /** Commit entries of older terms by counting replicas (violates Figure 8). */
  readonly commitOlderTerms: boolean;
  /** Grant votes without the up-to-date log check (violates §5.4.1). */
  readonly voteWithoutLogCheck: boolean;
  /** Accept a vote request even if already voted for another candidate this term (violates §5.2). */
  readonly voteTwice: boolean;
}

/** Configuration with every field present and checked. */
export interface ResolvedConfig {
  readonly id: NodeId;
  readonly peers: readonly NodeId[];
  readonly electionTimeoutTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly forwardToLeader: boolean;
  readonly forwardReads: boolean;
  readonly seed: number;
  readonly verify: boolean;
  readonly bounds: RaftBounds;
  readonly restore: PersistedState | null;
  readonly plantedBugs: PlantedBugs;
}

/** Default bounds. */
export const defaultBounds: RaftBounds = Object.freeze({
  inflightCountMax: 256,
  inflightBytesMax: 32 * 1024 * 1024,
  appendBytesMax: 1024 * 1024,
  appendCountMax: 16 * 1024,
  uncommittedBytesMax: 64 * 1024 * 1024,
  entryBytesMax: 8 * 1024 * 1024,
  applyBytesMax: 64 * 1024 * 1024,
  logBytesMax: logBytesMaxDefault,
  readsPendingMax: 64 * 1024,
  forwardCountMax: 4096,
  // Well below the transports' default frame bound, so a chunk never becomes an oversized frame.
  snapshotChunkBytesMax: 1024 * 1024,
});

const noPlantedBugs: PlantedBugs = Object.freeze({
  commitOlderTerms: false,
  voteWithoutLogCheck: false,
  voteTwice: false,
});

function positiveInteger(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new ConfigError(field, `expected a positive integer, got ${describeValue(value)}`);
  }
  return value;
}

function nonNegativeInteger(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ConfigError(field, `expected a non-negative integer, got ${describeValue(value)}`);
  }
  return value;
}

function flag(field: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new ConfigError(field, `expected true or false, got ${describeValue(value)}`);
  return value;
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  return typeof value;
}

/** Validates `config` and fills in defaults; throws ConfigError naming the first bad field. */
export function resolveConfig(config: RaftConfig): ResolvedConfig {
  if (typeof config !== 'object' || config === null) throw new ConfigError('config', 'expected an object');
  const id = positiveInteger('id', config.id);
  if (!Array.isArray(config.peers)) throw new ConfigError('peers', `expected an array of node ids, got ${describeValue(config.peers)}`);
  if (config.peers.length === 0) throw new ConfigError('peers', 'must list at least this node');
  const peers = config.peers.map((peer, i) => positiveInteger(`peers[${i}]`, peer));
  const unique = new Set(peers);
  if (unique.size !== peers.length) throw new ConfigError('peers', `duplicate node id in [${peers.join(', ')}]`);
  if (!unique.has(id)) throw new ConfigError('peers', `must include this node's id ${id}, got [${peers.join(', ')}]`);
  const electionTimeoutTicks = positiveInteger('electionTimeoutTicks', config.electionTimeoutTicks ?? 10);
  const heartbeatTicks = positiveInteger('heartbeatTicks', config.heartbeatTicks ?? 1);
  if (heartbeatTicks >= electionTimeoutTicks) {
    throw new ConfigError('heartbeatTicks', `${heartbeatTicks} must be below electionTimeoutTicks ${electionTimeoutTicks}`);
  }
  if (electionTimeoutTicks < 2) throw new ConfigError('electionTimeoutTicks', `${electionTimeoutTicks} must be at least 2`);
  const seed = config.seed === undefined ? id : nonNegativeInteger('seed', config.seed);
  const bounds: Record<string, number> = { ...defaultBounds };
  if (config.bounds !== undefined) {
    if (typeof config.bounds !== 'object' || config.bounds === null) throw new ConfigError('bounds', 'expected an object');
    for (const [key, value] of Object.entries(config.bounds)) {
      if (!(key in defaultBounds)) throw new ConfigError(`bounds.${key}`, `unknown bound; known: ${Object.keys(defaultBounds).join(', ')}`);
      if (value === undefined) continue;
      bounds[key] = positiveInteger(`bounds.${key}`, value);
    }
  }
  const resolvedBounds = bounds as unknown as RaftBounds;
  if (resolvedBounds.logBytesMax < 1024) throw new ConfigError('bounds.logBytesMax', `${resolvedBounds.logBytesMax} below 1024`);
  if (resolvedBounds.logBytesMax > 2 ** 31) throw new ConfigError('bounds.logBytesMax', `${resolvedBounds.logBytesMax} above 2^31`);
  // An entry whose frame cannot fit the ring could only ever be refused as busy, and its client
  // would retry forever: the default entry bound shrinks to a small ring, an explicit one must fit.
  const entryBytesFit = resolvedBounds.logBytesMax - frameHeaderBytesMax;
  if (resolvedBounds.entryBytesMax > entryBytesFit) {
    if (config.bounds?.entryBytesMax !== undefined) {
      throw new ConfigError('bounds.entryBytesMax', `${resolvedBounds.entryBytesMax} does not fit logBytesMax ${resolvedBounds.logBytesMax} (at most ${entryBytesFit})`);
    }
    bounds.entryBytesMax = entryBytesFit;
  }
  // A chunk becomes one message; past 2^30 bytes no transport frame (u32 length) could carry it.
  if (resolvedBounds.snapshotChunkBytesMax > 2 ** 30) {
    throw new ConfigError('bounds.snapshotChunkBytesMax', `${resolvedBounds.snapshotChunkBytesMax} above 2^30`);
  }
  const restore = config.restore ?? null;
  if (restore !== null) validateRestore(restore, peers);
  return {
    id,
    peers: [...peers].sort((a, b) => a - b),
    electionTimeoutTicks,
    heartbeatTicks,
    preVote: flag('preVote', config.preVote, true),
    checkQuorum: flag('checkQuorum', config.checkQuorum, true),
    forwardToLeader: flag('forwardToLeader', config.forwardToLeader, true),
    forwardReads: flag('forwardReads', config.forwardReads, true),
    seed,
    verify: flag('verify', config.verify, false),
    bounds: resolvedBounds,
    restore,
    plantedBugs: { ...noPlantedBugs, ...(config.plantedBugs ?? {}) },
  };
}

function validateRestore(restore: PersistedState, peers: readonly NodeId[]): void {
  const hard = restore.hardState;
  if (typeof hard !== 'object' || hard === null) throw new ConfigError('restore.hardState', 'expected { term, vote, commit }');
  nonNegativeInteger('restore.hardState.term', hard.term);
  nonNegativeInteger('restore.hardState.vote', hard.vote);
  nonNegativeInteger('restore.hardState.commit', hard.commit);
  if (hard.vote !== 0 && !peers.includes(hard.vote)) {
    throw new ConfigError('restore.hardState.vote', `${hard.vote} is not a peer`);
  }
  const snapshot = restore.snapshot ?? null;
  if (snapshot !== null) {
    nonNegativeInteger('restore.snapshot.index', snapshot.index);
    nonNegativeInteger('restore.snapshot.term', snapshot.term);
    if (snapshot.term > hard.term) throw new ConfigError('restore.snapshot.term', `${snapshot.term} above hard state term ${hard.term}`);
  }
}
