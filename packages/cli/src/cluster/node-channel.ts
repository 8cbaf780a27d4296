/**
 * The parent side of the control protocol over Node IPC: requests to one `raftlab node` child, each
 * with a deadline, replies matched by id, everything pending rejected when the child exits.
 */
import type { ChildProcess } from 'node:child_process';
import type { ControlError, ControlEvent, ControlReply, ControlRequest } from './control.js';

/** A request that failed: the node's ControlError, or `unreachable` (no reply in time, child gone). */
export class ControlRequestError extends Error {
  constructor(
    readonly code: ControlError['code'] | 'unreachable',
    message: string,
    /** The leader the node knows of (0: none or unknown). */
    readonly leader: number = 0,
  ) {
    super(message);
    this.name = 'ControlRequestError';
  }
}

/** Distributes a request type over the union so each op keeps its own fields. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

interface Pending {
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: ControlRequestError) => void;
  readonly timer: NodeJS.Timeout;
}

/** Requests to one child over its IPC channel. */
export class NodeChannel {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  constructor(
    readonly child: ChildProcess,
    private readonly onEvent: (event: ControlEvent) => void = () => undefined,
  ) {
    child.on('message', (message: unknown) => this.onMessage(message));
    child.once('exit', () => this.close('the node exited'));
    child.once('disconnect', () => this.close('the IPC channel closed'));
  }

  /** Sends a request; resolves with its result or rejects with a ControlRequestError. */
  request(request: WithoutId<ControlRequest>, timeoutMs = 5000): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.closed || !this.child.connected) {
        reject(new ControlRequestError('unreachable', 'the node is not running'));
        return;
      }
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ControlRequestError('unreachable', `no reply to ${request.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.child.send({ ...request, id }, (error) => {
        if (error === null) return;
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new ControlRequestError('unreachable', `cannot reach the node: ${error.message}`));
      });
    });
  }

  private onMessage(message: unknown): void {
    if (typeof message !== 'object' || message === null) return;
    if ('event' in message) {
      this.onEvent(message as ControlEvent);
      return;
    }
    const reply = message as ControlReply;
    const pending = this.pending.get(reply.id);
    if (pending === undefined) return;
    this.pending.delete(reply.id);
    clearTimeout(pending.timer);
    if (reply.ok) pending.resolve(reply.result);
    else pending.reject(new ControlRequestError(reply.error.code, reply.error.message, reply.error.leader));
  }

  private close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(new ControlRequestError('unreachable', reason));
    }
    this.pending.clear();
  }
}
