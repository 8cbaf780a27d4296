/**
 * A minimal in-process transport for the runtime's own tests: messages are copied (the views in a
 * sent message are only valid during send) and delivered on a later macrotask, with a drop filter.
 */
import { type NodeId, type RemoteMessage, copyFrames } from '@raftlab/core';
import type { RuntimeTransport } from '../src/index.js';

export class LoopbackHub {
  private readonly handlers = new Map<NodeId, (message: RemoteMessage) => void>();
  /** Return false to drop. */
  filter: (message: RemoteMessage) => boolean = () => true;
  sent = 0;

  transport(id: NodeId): RuntimeTransport {
    return {
      send: (message) => {
        this.sent += 1;
        if (!this.filter(message)) return;
        const copy = message.type === 'append' ? { ...message, entries: copyFrames(message.entries) } : message;
        setImmediate(() => this.handlers.get(copy.to)?.(copy));
      },
      onMessage: (handler) => {
        this.handlers.set(id, handler);
      },
      start: async () => undefined,
      stop: async () => {
        this.handlers.delete(id);
      },
    };
  }

  isolate(id: NodeId): void {
    this.filter = (m) => m.from !== id && m.to !== id;
  }

  heal(): void {
    this.filter = () => true;
  }
}

/** Polls `probe` every `pollMs` until it returns a value; throws naming `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 5000, pollMs = 5): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
