/**
 * Messages: every input to a RaftNode, local or remote, is one of these plain objects, told apart
 * by a string-literal `type`. Remote messages carry the sender's term; local ones (hup, beat,
 * checkQuorum) carry term 0 and never leave the node.
 */
import type { EntryFrames } from './entry.js';

/** A node's id: a positive integer, unique in the cluster. */
export type NodeId = number;

/** Marks "no node" in leaderId and vote. */
export const noNode: NodeId = 0;

interface Envelope {
  /** Sender. */
  readonly from: NodeId;
  /** Recipient. */
  readonly to: NodeId;
  /** Sender's term (for preVote: the term the sender would campaign in); 0 for local messages. */
  readonly term: number;
}

/** AppendEntries (§5.3): entries after (prevIndex, prevTerm), plus the leader's commit index. */
export interface AppendMessage extends Envelope {
  readonly type: 'append';
  readonly prevIndex: number;
  readonly prevTerm: number;
  /** Leader's commit index, never past what this message lets the follower match. */
  readonly commit: number;
  /** Raw frames, views of the leader's ring when sent; zero entries for a probe or commit update. */
  readonly entries: EntryFrames;
}

/** Answer to AppendEntries or InstallSnapshot. */
export interface AppendResponseMessage extends Envelope {
  readonly type: 'appendResponse';
  /** True when prevIndex/prevTerm did not match. */
  readonly reject: boolean;
  /** Accepted: the last index now known to match. Rejected: the prevIndex that did not match. */
  readonly index: number;
  /**
   * Conflict hint when rejected: the follower's term at the rejected index and the first index it
   * holds of that term; or, when its log is too short, hintTerm 0 and its last index.
   */
  readonly hintIndex: number;
  readonly hintTerm: number;
}

/** RequestVote (§5.2) or its pre-vote probe (thesis §9.6). */
export interface VoteMessage extends Envelope {
  readonly type: 'vote' | 'preVote';
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** A leadership transfer: voters must ignore their leader lease (thesis §3.10). */
  readonly transfer: boolean;
}

/** Answer to a vote or preVote. */
export interface VoteResponseMessage extends Envelope {
  readonly type: 'voteResponse' | 'preVoteResponse';
  readonly reject: boolean;
}

/** Leader heartbeat: keeps followers from campaigning and carries the commit index and a read context. */
export interface HeartbeatMessage extends Envelope {
  readonly type: 'heartbeat';
  /** min(leader commit, follower match). */
  readonly commit: number;
  /** The newest pending ReadIndex context, echoed back to confirm leadership (thesis §6.4). */
  readonly context: string | null;
}

/** Answer to a heartbeat. */
export interface HeartbeatResponseMessage extends Envelope {
  readonly type: 'heartbeatResponse';
  readonly context: string | null;
}

/** Tells the transfer target to campaign at once (thesis §3.10). */
export interface TimeoutNowMessage extends Envelope {
  readonly type: 'timeoutNow';
}

/** Proposals a follower forwards to its leader. */
export interface ProposeMessage extends Envelope {
  readonly type: 'propose';
  readonly data: readonly Uint8Array[];
}

/** A ReadIndex request a follower forwards to its leader. */
export interface ReadIndexMessage extends Envelope {
  readonly type: 'readIndex';
  readonly context: string;
}

/** The leader's answer to a forwarded ReadIndex request: read once applied through `index`. */
export interface ReadIndexResponseMessage extends Envelope {
  readonly type: 'readIndexResponse';
  readonly context: string;
  readonly index: number;
}

/** State machine snapshot metadata and bytes. */
export interface Snapshot {
  /** Last log index the snapshot covers. */
  readonly index: number;
  /** Term of that entry. */
  readonly term: number;
  /** Voters at that point. */
  readonly peers: readonly NodeId[];
  /** The state machine's own encoding. */
  readonly data: Uint8Array;
}

/**
 * InstallSnapshot (§7, Figure 13): one chunk of the snapshot a follower needs because the leader
 * has compacted the entries it lacks. The snapshot travels in chunks of at most
 * bounds.snapshotChunkBytesMax so one message never holds a whole state machine; `snapshot` carries
 * the metadata (index, term, peers) and, in `data`, only this chunk's bytes, a view of the leader's
 * snapshot from `offset`.
 */
export interface SnapshotMessage extends Envelope {
  readonly type: 'snapshot';
  /** Metadata of the whole snapshot; `data` holds this chunk only. */
  readonly snapshot: Snapshot;
  /** Byte offset of this chunk in the snapshot's data. */
  readonly offset: number;
  /** True on the last chunk: the follower installs the snapshot once it holds every byte. */
  readonly done: boolean;
}

/**
 * Answer to a chunk that is not the last: how many bytes of the snapshot the follower holds, so the
 * leader sends the chunk from there. The last chunk is answered by an appendResponse (the follower's
 * log now matches through the snapshot's index).
 */
export interface SnapshotResponseMessage extends Envelope {
  readonly type: 'snapshotResponse';
  /** The snapshot's index (identifies the transfer). */
  readonly index: number;
  /** Bytes held, in order from 0: the offset of the next chunk the follower can take. */
  readonly offset: number;
  /** True when the chunk did not follow what the follower holds (a gap, or no transfer under way). */
  readonly reject: boolean;
}

/** Local: the election timeout fired; start a (pre-)campaign. */
export interface HupMessage extends Envelope {
  readonly type: 'hup';
  /** Campaign for a leadership transfer: skip pre-vote, override leases. */
  readonly transfer: boolean;
}

/** Local: the heartbeat interval elapsed (leader only). */
export interface BeatMessage extends Envelope {
  readonly type: 'beat';
}

/** Local: an election timeout elapsed on the leader; step down unless a quorum was heard from. */
export interface CheckQuorumMessage extends Envelope {
  readonly type: 'checkQuorum';
}

/** Messages that travel between nodes. */
export type RemoteMessage =
  | AppendMessage
  | AppendResponseMessage
  | VoteMessage
  | VoteResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | TimeoutNowMessage
  | ProposeMessage
  | ReadIndexMessage
  | ReadIndexResponseMessage
  | SnapshotMessage
  | SnapshotResponseMessage;

/** Messages a node sends itself. */
export type LocalMessage = HupMessage | BeatMessage | CheckQuorumMessage;

/** Every message. */
export type Message = RemoteMessage | LocalMessage;

/** Every message type. */
export type MessageType = Message['type'];

/** The message types that travel between nodes (a transport rejects anything else). */
export const remoteMessageTypes = [
  'append',
  'appendResponse',
  'vote',
  'preVote',
  'voteResponse',
  'preVoteResponse',
  'heartbeat',
  'heartbeatResponse',
  'timeoutNow',
  'propose',
  'readIndex',
  'readIndexResponse',
  'snapshot',
  'snapshotResponse',
] as const satisfies readonly RemoteMessage['type'][];

/** True for messages that are only ever sent by a node to itself. */
export function isLocalMessage(message: Message): message is LocalMessage {
  return message.type === 'hup' || message.type === 'beat' || message.type === 'checkQuorum';
}
