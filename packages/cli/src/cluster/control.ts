/**
 * The control protocol of `raftlab node`: how a parent (`raftlab cluster up`, the tests, a script)
 * reads a node's status and drives it. One request gets one reply, matched by `id`:
 *
 *   { "id": 1, "op": "status" }                         -> { "id": 1, "ok": true, "result": NodeReport }
 *   { "id": 2, "op": "propose", "commands": ["5", "-2"] } -> { "id": 2, "ok": true, "result": ProposeResult }
 *   { "id": 7, "op": "propose", "commands": ["5"], "client": 81724, "seq": 1 }   exactly-once, retryable
 *   { "id": 3, "op": "partition", "peers": [1, 3] }     drop Raft traffic with these peers (both ways)
 *   { "id": 4, "op": "heal" }                            end the partition
 *   { "id": 5, "op": "transfer", "to": 2 }               hand leadership to node 2 (leader only)
 *   { "id": 6, "op": "stop" }                            graceful stop (the process then exits 0)
 *
 * A propose without `client` and `seq` is new commands each time: the node numbers them under its
 * own client id, so a caller that retries after a timeout or a lost reply (the commands may have
 * committed anyway) can apply them twice. With `client` (a positive integer the caller picks at
 * random and keeps) and `seq` (its number for the first command; the next ones get seq+1, ...; a
 * later request continues above the last), the sum machine applies each (client, sequence) once:
 * resending the same request, to this node or another, is safe, and the reply counts what was
 * recognised as already applied in `duplicates` (thesis §6.3; the machine remembers the newest
 * sequence of its most recent clients, a bounded table, see @raftlab/core i64.ts). The counter
 * machine has no such table and refuses sessions with bad-request.
 *
 * A failed request answers { "id", "ok": false, "error": { "code", "message", "leader" } } with a
 * runtime error code (not-leader, timeout, busy, too-large, dropped, stopped) or `bad-request`.
 * Besides replies the node sends events, which carry `event` and the node's id as `node` (never
 * `id`, so they cannot be taken for a reply): { "event": "ready", "node", "pid", "transport",
 * "listen" } once serving, { "event": "role", "node", "role", "term", "leader" } on each role or
 * leader change, { "event": "stopped", "node" } at the end.
 *
 * Two carriers, chosen with --control: `ipc` (Node's IPC channel, when the parent spawned the node
 * with an 'ipc' stdio entry: messages are the objects above) or `stdio` (JSON lines: requests on
 * stdin, replies and events on stdout). Both end the node when the parent goes away (the IPC channel
 * disconnects, stdin ends), so a parent that dies however it dies leaves no orphan behind.
 */
import type { NodeId, Role } from '@raftlab/core';
import { RuntimeError } from '@raftlab/runtime';

/** A request from the parent. */
export type ControlRequest =
  | { readonly id: number; readonly op: 'status' }
  | { readonly id: number; readonly op: 'propose'; readonly commands: readonly string[]; readonly session?: ProposeSession }
  | { readonly id: number; readonly op: 'partition'; readonly peers: readonly NodeId[] }
  | { readonly id: number; readonly op: 'heal' }
  | { readonly id: number; readonly op: 'transfer'; readonly to: NodeId }
  | { readonly id: number; readonly op: 'stop' };

/** Why a request failed: a runtime error code, or a request the node could not read. */
export interface ControlError {
  readonly code: RuntimeError['code'] | 'bad-request';
  readonly message: string;
  /** The leader this node knows of (0: none). */
  readonly leader: NodeId;
}

/** The answer to one request. */
export type ControlReply = { readonly id: number; readonly ok: true; readonly result: unknown } | { readonly id: number; readonly ok: false; readonly error: ControlError };

/** What a node tells its parent without being asked. */
export type ControlEvent =
  | { readonly event: 'ready'; readonly node: NodeId; readonly pid: number; readonly transport: string; readonly listen: string }
  | { readonly event: 'role'; readonly node: NodeId; readonly role: Role; readonly term: number; readonly leader: NodeId }
  | { readonly event: 'stopped'; readonly node: NodeId };

/** The state machine's state, comparable across replicas. */
export type MachineState = { readonly kind: 'sum'; readonly value: string; readonly commands: number } | { readonly kind: 'counter'; readonly count: number; readonly checksum: number };

/** A node's status, as the status op and the cluster table report it. */
export interface NodeReport {
  readonly id: NodeId;
  readonly pid: number;
  readonly role: Role;
  readonly term: number;
  /** The leader this node knows of (0: none). */
  readonly leader: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly machine: MachineState;
  /** Peers cut off by a partition op. */
  readonly partitionedFrom: readonly NodeId[];
  /** Transport counters (rogue connections show up in the last two). */
  readonly transport: { readonly connectionsOpen: number; readonly framesMalformed: number; readonly handshakesRefused: number };
}

/** A caller's numbering of its commands, which makes a propose retryable (see the file comment). */
export interface ProposeSession {
  /** The caller's client id: a positive safe integer, chosen at random and kept. */
  readonly client: number;
  /** The sequence number of the first command; command i gets seq + i. */
  readonly seq: number;
}

/** The result of a successful propose op. */
export interface ProposeResult {
  /** Commands applied. */
  readonly count: number;
  /** The machine's state once the last of them applied here. */
  readonly machine: MachineState;
  /** With a session only: commands the machine had applied already (a retry), not applied again. */
  readonly duplicates?: number;
}

/** Largest number of commands in one propose request (a bound on what one request can queue). */
export const proposeCommandsMax = 100_000;

/** Turns anything a request handler threw into a ControlError. */
export function controlErrorOf(error: unknown): ControlError {
  if (error instanceof RuntimeError) return { code: error.code, message: error.message, leader: error.leaderId };
  return { code: 'bad-request', message: error instanceof Error ? error.message : String(error), leader: 0 };
}

function isPositiveSafeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
}

function isNodeId(value: unknown): value is NodeId {
  return isPositiveSafeInteger(value);
}

/**
 * Checks an untrusted message (a JSON line typed by anyone) and returns the request, or a reason it
 * is not one. The id is echoed when it can be read, so the parent can match the refusal.
 */
export function parseControlRequest(message: unknown): { ok: true; request: ControlRequest } | { ok: false; id: number; reason: string } {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return { ok: false, id: 0, reason: 'a request is a JSON object' };
  const record = message as Record<string, unknown>;
  const id = record['id'];
  if (typeof id !== 'number' || !Number.isSafeInteger(id)) return { ok: false, id: 0, reason: 'a request needs an integer "id"' };
  const bad = (reason: string): { ok: false; id: number; reason: string } => ({ ok: false, id, reason });
  switch (record['op']) {
    case 'status':
    case 'heal':
    case 'stop':
      return { ok: true, request: { id, op: record['op'] } };
    case 'propose': {
      const commands = record['commands'];
      if (!Array.isArray(commands) || !commands.every((command) => typeof command === 'string')) return bad('propose needs "commands": an array of strings');
      if (commands.length > proposeCommandsMax) return bad(`propose takes at most ${proposeCommandsMax} commands, got ${commands.length}`);
      const client = record['client'];
      const seq = record['seq'];
      if (client === undefined && seq === undefined) return { ok: true, request: { id, op: 'propose', commands: commands as string[] } };
      if (!isPositiveSafeInteger(client) || !isPositiveSafeInteger(seq)) return bad('propose takes "client" and "seq" together, each a positive integer');
      if (!Number.isSafeInteger(seq + commands.length)) return bad(`"seq" ${seq} leaves no room for ${commands.length} commands`);
      return { ok: true, request: { id, op: 'propose', commands: commands as string[], session: { client, seq } } };
    }
    case 'partition': {
      const peers = record['peers'];
      if (!Array.isArray(peers) || !peers.every(isNodeId)) return bad('partition needs "peers": an array of node ids');
      return { ok: true, request: { id, op: 'partition', peers: peers as NodeId[] } };
    }
    case 'transfer': {
      const to = record['to'];
      if (!isNodeId(to)) return bad('transfer needs "to": a node id');
      return { ok: true, request: { id, op: 'transfer', to } };
    }
    default:
      return bad(`unknown op ${JSON.stringify(record['op'])}; expected status, propose, partition, heal, transfer or stop`);
  }
}
