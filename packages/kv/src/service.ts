/**
 * The KV service on one node, below HTTP: turns requests into KV commands, proposes them through the
 * RaftRuntime, serves reads at the asked consistency, and maps every outcome to an API result or a
 * KvApiError with a stable code.
 *
 * Sessions (thesis §6.3). A session-stamped write carries the client's (clientId, sequence,
 * lowestPendingSequence) unchanged: retries of it apply once. A write without a stamp (a plain curl)
 * uses the serving leader's own session, registered lazily and registered again when the state
 * machine has forgotten it (`unknown-session`: the write was refused, so repeating it is safe). The
 * server never retries its own writes, so each one acknowledges every earlier response of its session
 * (lowestPendingSequence = sequence): the session caches at most one response, any number of writes
 * pipeline through it, and the state machine's per-session window never fills. Such writes are
 * at-most-once per request, not exactly-once under client retries: only stamped writes are.
 *
 * Time. The state machine may not read a clock, so the proposer stamps `timeMs` (Date.now()) into each
 * command; replicas use the maximum seen, which keeps session expiry deterministic.
 */
import type { NodeId } from '@raftlab/core';
import { type RaftRuntime, type ReadConsistency, RuntimeError, type StateMachine } from '@raftlab/runtime';
import { KvApiError } from './api.js';
import { type KvCommand, type SessionStamp, encodeCommand } from './command.js';
import type { KvMachine, KvResult } from './machine.js';

/** What the runtime returns for each applied entry: the state machine's result and the entry's index. */
export interface AppliedKvResult {
  readonly index: number;
  readonly result: KvResult;
}

/**
 * The runtime's view of a KvMachine: results carry the log index they were applied at, so write
 * responses can report it (a total order every client can compare).
 */
export class IndexedKvMachine implements StateMachine<AppliedKvResult> {
  constructor(readonly machine: KvMachine) {}

  apply(index: number, data: Uint8Array): AppliedKvResult {
    return { index, result: this.machine.apply(index, data) };
  }

  snapshot(): Uint8Array {
    return this.machine.snapshot();
  }

  restore(data: Uint8Array): void {
    this.machine.restore(data);
  }
}

/** A write the service can apply. `expected` null: the key must be absent. */
export type KvWriteRequest =
  | { readonly op: 'put'; readonly key: string; readonly value: string }
  | { readonly op: 'delete'; readonly key: string }
  | { readonly op: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string };

/** The outcome of an applied write (a failed cas is a KvApiError('cas-failed') instead). */
export type KvWriteOutcome =
  | { readonly op: 'put'; readonly previous: string | null; readonly index: number }
  | { readonly op: 'delete'; readonly existed: boolean; readonly index: number }
  | { readonly op: 'cas'; readonly index: number };

/** The RaftRuntime a KV service drives. */
export type KvRuntime = RaftRuntime<AppliedKvResult>;

/** Maps a runtime failure to the API error a client sees. */
export function apiErrorOf(error: unknown, what: 'write' | 'read' | 'register'): KvApiError {
  if (error instanceof KvApiError) return error;
  if (!(error instanceof RuntimeError)) return new KvApiError('internal', `${what} failed: ${error instanceof Error ? error.message : String(error)}`);
  const unknownOutcome = what === 'read' ? 'nothing was read' : 'the outcome is unknown: retry with the same session stamp';
  switch (error.code) {
    case 'not-leader':
      return error.leaderId === 0
        ? new KvApiError('no-quorum', `no leader backed by a quorum is known (cut off from the majority, or an election is under way): ${error.message}`, { leader: 0 })
        : new KvApiError('no-quorum', `leadership moved to node ${error.leaderId} while serving the ${what}: ${error.message}; retry`, { leader: error.leaderId });
    case 'timeout':
      return new KvApiError('no-quorum', `the ${what} was not confirmed by a quorum in time (${error.message}); ${unknownOutcome}`, { leader: error.leaderId });
    case 'dropped':
      return new KvApiError('no-quorum', `leadership changed and the ${what} was not applied (${error.message}); retry`);
    case 'busy':
      return new KvApiError('busy', `the leader is at its bound: ${error.message}; retry later`);
    case 'too-large':
      return new KvApiError('body-too-large', error.message);
    case 'stopped':
      return new KvApiError('shutting-down', 'the node is stopping');
  }
}

/** Options of a KvService. */
export interface KvServiceOptions {
  readonly runtime: KvRuntime;
  readonly machine: KvMachine;
  /** The proposer's clock for `timeMs` (default Date.now). */
  readonly clockMs?: () => number;
}

/** The KV operations of one node (see the file comment). */
export class KvService {
  readonly runtime: KvRuntime;
  readonly machine: KvMachine;
  private readonly clockMs: () => number;
  /** The server-owned session of this node, for unstamped writes; 0: none yet. */
  private serverClientId = 0;
  private serverRegistration: Promise<number> | null = null;
  private serverSequence = 0;

  constructor(options: KvServiceOptions) {
    this.runtime = options.runtime;
    this.machine = options.machine;
    this.clockMs = options.clockMs ?? Date.now;
  }

  /** This node's id. */
  get id(): NodeId {
    return this.runtime.node.id;
  }

  /** Registers a new client session; resolves with its client id (the register entry's index). */
  async register(): Promise<number> {
    const result = await this.propose({ op: 'register', timeMs: this.now() }, 'register');
    if (result.result.op !== 'register') throw new KvApiError('internal', `register applied as ${result.result.op}`);
    return result.result.clientId;
  }

  /**
   * Applies a write. With `stamp` it is exactly-once under retries of the same stamp; without, it
   * uses this node's server session (at-most-once per call).
   */
  async write(request: KvWriteRequest, stamp: SessionStamp | null): Promise<KvWriteOutcome> {
    if (stamp !== null) return this.outcomeOf(request, await this.propose(this.commandOf(request, stamp), 'write'));
    // The server session: one retry after re-registering if the machine forgot it (the refused write was not applied).
    for (let attempt = 0; ; attempt++) {
      const clientId = await this.serverSession();
      const sequence = ++this.serverSequence;
      const applied = await this.propose(this.commandOf(request, { clientId, sequence, lowestPendingSequence: sequence }), 'write');
      if (applied.result.op === 'refused' && applied.result.reason === 'unknown-session' && attempt === 0) {
        if (this.serverClientId === clientId) this.serverClientId = 0;
        continue;
      }
      return this.outcomeOf(request, applied);
    }
  }

  /** The value of `key` (null: absent), read at `consistency` (see RaftRuntime.read). */
  async read(key: string, consistency: ReadConsistency): Promise<string | null> {
    const machine = this.machine;
    try {
      return await this.runtime.read(() => machine.read(key), consistency);
    } catch (error) {
      throw apiErrorOf(error, 'read');
    }
  }

  private now(): number {
    return Math.max(0, Math.floor(this.clockMs()));
  }

  private async serverSession(): Promise<number> {
    if (this.serverClientId !== 0) return this.serverClientId;
    if (this.serverRegistration === null) {
      this.serverRegistration = this.register().then(
        (clientId) => {
          this.serverRegistration = null;
          this.serverClientId = clientId;
          this.serverSequence = 0;
          return clientId;
        },
        (error: unknown) => {
          this.serverRegistration = null;
          throw error;
        },
      );
    }
    return this.serverRegistration;
  }

  private commandOf(request: KvWriteRequest, session: SessionStamp): KvCommand {
    const timeMs = this.now();
    switch (request.op) {
      case 'put':
        return { op: 'put', timeMs, session, key: request.key, value: request.value };
      case 'delete':
        return { op: 'delete', timeMs, session, key: request.key };
      case 'cas':
        return { op: 'cas', timeMs, session, key: request.key, expected: request.expected, value: request.value };
    }
  }

  private async propose(command: KvCommand, what: 'write' | 'register'): Promise<AppliedKvResult> {
    const encoded = encodeCommand(command, this.machine.config);
    if (!encoded.ok) {
      throw new KvApiError(encoded.reason === 'malformed-command' ? 'invalid-request' : encoded.reason, encoded.detail);
    }
    try {
      return await this.runtime.propose(encoded.bytes);
    } catch (error) {
      throw apiErrorOf(error, what);
    }
  }

  private outcomeOf(request: KvWriteRequest, applied: AppliedKvResult): KvWriteOutcome {
    const { result, index } = applied;
    switch (result.op) {
      case 'put':
        return { op: 'put', previous: result.previous, index };
      case 'delete':
        return { op: 'delete', existed: result.existed, index };
      case 'cas':
        if (result.ok) return { op: 'cas', index };
        throw new KvApiError('cas-failed', `${request.key} does not hold the expected value`, { actual: result.actual });
      case 'refused':
        switch (result.reason) {
          case 'malformed-command':
            throw new KvApiError('invalid-request', result.detail);
          case 'key-too-large':
          case 'value-too-large':
          case 'unknown-session':
          case 'sequence-acknowledged':
          case 'session-window-full':
          case 'store-full':
            throw new KvApiError(result.reason, result.detail);
        }
        throw new KvApiError('internal', `unexpected refusal ${String(result.reason)}`);
      case 'register':
      case 'get':
        throw new KvApiError('internal', `a ${request.op} applied as ${result.op}`);
    }
  }
}
