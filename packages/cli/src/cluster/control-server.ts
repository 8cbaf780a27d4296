/**
 * The node side of the control protocol (control.ts): answers requests against a RunningNode over
 * Node's IPC channel or JSON lines on stdin/stdout, and reports when the parent went away.
 */
import readline from 'node:readline';
import type { ControlEvent, ControlReply, ControlRequest } from './control.js';
import { controlErrorOf, parseControlRequest } from './control.js';
import type { RunningNode } from './running-node.js';

/** Where control messages travel. */
export type ControlCarrier = 'ipc' | 'stdio';

/** A control channel serving one node. */
export interface ControlServer {
  /** Sends an event to the parent (dropped once the parent is gone). */
  send(message: ControlEvent): void;
  /** Stops reading requests and lets the process exit. */
  close(): void;
}

/** Answers one request. `onStop` runs the node's graceful stop (the process exits after it). */
export async function answerControlRequest(node: RunningNode, request: ControlRequest, onStop: () => void): Promise<ControlReply> {
  try {
    switch (request.op) {
      case 'status':
        return { id: request.id, ok: true, result: node.report() };
      case 'propose':
        return { id: request.id, ok: true, result: await node.propose(request.commands, request.session) };
      case 'partition':
        node.partition(request.peers);
        return { id: request.id, ok: true, result: { partitionedFrom: node.report().partitionedFrom } };
      case 'heal':
        node.heal();
        return { id: request.id, ok: true, result: { partitionedFrom: [] } };
      case 'transfer':
        await node.transfer(request.to);
        return { id: request.id, ok: true, result: { leader: request.to } };
      case 'stop':
        onStop();
        return { id: request.id, ok: true, result: { stopping: true } };
    }
  } catch (error) {
    return { id: request.id, ok: false, error: controlErrorOf(error) };
  }
}

/**
 * Serves the control protocol on `carrier`. `onParentGone` runs once when the parent cannot reach
 * the node any more (IPC disconnected, stdin ended): the node should stop rather than run orphaned.
 */
export function serveControl(node: RunningNode, carrier: ControlCarrier, onStop: () => void, onParentGone: () => void): ControlServer {
  if (carrier === 'ipc') {
    if (typeof process.send !== 'function') throw new Error('--control ipc needs a parent that spawned this process with an IPC channel');
    const send = (message: ControlEvent | ControlReply): void => {
      if (process.connected) process.send?.(message);
    };
    const onMessage = (message: unknown): void => {
      void handle(node, message, onStop).then(send);
    };
    process.on('message', onMessage);
    process.once('disconnect', onParentGone);
    return {
      send,
      close: () => {
        process.off('message', onMessage);
        process.off('disconnect', onParentGone);
        if (process.connected) process.disconnect();
      },
    };
  }
  const send = (message: ControlEvent | ControlReply): void => {
    if (process.stdout.writable) process.stdout.write(`${JSON.stringify(message)}\n`);
  };
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  let closed = false;
  // When stdin ends, the requests already read are still answered before the node stops, so
  // `echo '{"id":1,"op":"propose",...}' | raftlab node ... --control stdio` gets its reply.
  let inFlight = 0;
  let ended = false;
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      send({ id: 0, ok: false, error: { code: 'bad-request', message: 'not a JSON line', leader: 0 } });
      return;
    }
    inFlight += 1;
    void handle(node, message, onStop).then((reply) => {
      send(reply);
      inFlight -= 1;
      if (ended && inFlight === 0 && !closed) onParentGone();
    });
  });
  lines.once('close', () => {
    ended = true;
    if (!closed && inFlight === 0) onParentGone();
  });
  return {
    send,
    close: () => {
      closed = true;
      lines.close();
      process.stdin.destroy();
    },
  };
}

async function handle(node: RunningNode, message: unknown, onStop: () => void): Promise<ControlReply> {
  const parsed = parseControlRequest(message);
  if (!parsed.ok) return { id: parsed.id, ok: false, error: { code: 'bad-request', message: parsed.reason, leader: 0 } };
  return answerControlRequest(node, parsed.request, onStop);
}
