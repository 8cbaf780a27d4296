/**
 * Seeded generation of register histories that are linearizable by construction, for testing and
 * benchmarking the linearizability checker.
 *
 * A real sequential store (one register per key) is driven by simulated clients. Each operation is
 * invoked at some time, takes effect on the store at a later time (its linearization point), and
 * returns later still, so intervals overlap across clients exactly as they would against a real
 * linearizable service. Some clients crash with an operation in flight: that operation stays pending
 * (no return, no output) and takes effect either before the crash, at some later moment, or never,
 * like a proposal that commits after its client timed out. A crashed client is replaced by a new
 * client id. Every written value is unique, which lets tests build mutations that are guaranteed to
 * be non-linearizable.
 */
import { Prng } from '@raftlab/core';
import type { HistoryOperation, RegisterInput, RegisterOutput } from './linearizability.js';

/** Parameters of a generated history. */
export interface HistoryShape {
  readonly seed: number;
  /** Operations invoked in total. */
  readonly operationCount: number;
  /** Clients running at once. */
  readonly clientCount: number;
  readonly keyCount: number;
  /** Share of operations that are reads (default 0.5); the rest split between writes and cas. */
  readonly readShare?: number;
  /** Share of writes that delete (default 0.1). */
  readonly deleteShare?: number;
  /** Chance that a client crashes while an operation is in flight (default 0.01). */
  readonly crashChance?: number;
}

/** A generated history with what really happened. */
export interface GeneratedHistory {
  readonly operations: HistoryOperation[];
  /** Per operation: the time it took effect on the store, or null if it never did. */
  readonly effectTimes: (number | null)[];
}

interface InFlight {
  readonly index: number;
  effected: boolean;
}

/** Generates a linearizable history (see the file comment); the same shape gives the same history. */
export function generateHistory(shape: HistoryShape): GeneratedHistory {
  const prng = new Prng(shape.seed);
  const readShare = shape.readShare ?? 0.5;
  const deleteShare = shape.deleteShare ?? 0.1;
  const crashChance = shape.crashChance ?? 0.01;
  const keys = Array.from({ length: shape.keyCount }, (_, k) => `key-${k}`);
  const store = new Map<string, string>();
  const written = new Map<string, string[]>(); // values ever written per key, for cas guesses
  const inputs: RegisterInput[] = [];
  const clientIds: number[] = [];
  const calls: number[] = [];
  const outputs: (RegisterOutput | undefined)[] = [];
  const returns: (number | undefined)[] = [];
  const effectTimes: (number | null)[] = [];
  const clients: (InFlight | null)[] = Array.from({ length: shape.clientCount }, () => null);
  const clientId = Array.from({ length: shape.clientCount }, (_, c) => c + 1);
  let nextClientId = shape.clientCount + 1;
  const limbo: number[] = []; // crashed before taking effect; may still take effect later
  let invoked = 0;
  let active = 0;
  let time = 0;
  let valueCounter = 0;

  const takeEffect = (index: number): void => {
    const input = inputs[index] as RegisterInput;
    const current = store.get(input.key) ?? null;
    let output: RegisterOutput;
    switch (input.op) {
      case 'read':
        output = { value: current };
        break;
      case 'write':
        if (input.value === null) store.delete(input.key);
        else store.set(input.key, input.value);
        output = { previous: current };
        break;
      case 'cas':
        if (current === input.expected) {
          store.set(input.key, input.value);
          output = { ok: true };
        } else {
          output = { ok: false, actual: current };
        }
        break;
    }
    outputs[index] = output;
    effectTimes[index] = time;
  };

  const invoke = (client: number): void => {
    const key = prng.pick(keys);
    const roll = prng.nextFloat();
    let input: RegisterInput;
    if (roll < readShare) {
      input = { op: 'read', key };
    } else if (roll < readShare + (1 - readShare) / 2) {
      const value = prng.chance(deleteShare) ? null : `v${++valueCounter}`;
      input = { op: 'write', key, value };
    } else {
      const history = written.get(key) ?? [];
      // Mostly expect the current value (so some cas succeed), else an old one or absence.
      const expected = prng.chance(0.6) ? (store.get(key) ?? null) : history.length > 0 && prng.chance(0.7) ? prng.pick(history) : null;
      input = { op: 'cas', key, expected, value: `v${++valueCounter}` };
    }
    if (input.op !== 'read' && input.value !== null) {
      const list = written.get(key);
      if (list === undefined) written.set(key, [input.value]);
      else list.push(input.value);
    }
    const index = inputs.length;
    inputs.push(input);
    clientIds.push(clientId[client] as number);
    calls.push(time);
    outputs.push(undefined);
    returns.push(undefined);
    effectTimes.push(null);
    clients[client] = { index, effected: false };
    invoked += 1;
    active += 1;
  };

  while (invoked < shape.operationCount || active > 0) {
    time += 1 + prng.nextInt(3);
    if (limbo.length > 0 && prng.chance(0.05)) {
      const which = prng.nextInt(limbo.length);
      const index = limbo[which] as number;
      limbo.splice(which, 1);
      if (prng.chance(0.5)) takeEffect(index); // late effect; otherwise never
    }
    const client = prng.nextInt(shape.clientCount);
    const inFlight = clients[client] ?? null;
    if (inFlight === null) {
      if (invoked < shape.operationCount) invoke(client);
      continue;
    }
    if (prng.chance(crashChance)) {
      // The client crashes: its operation stays pending; a new client takes its place.
      if (!inFlight.effected) {
        if (prng.chance(0.5)) limbo.push(inFlight.index);
      }
      outputs[inFlight.index] = undefined;
      clients[client] = null;
      clientId[client] = nextClientId++;
      active -= 1;
      continue;
    }
    if (!inFlight.effected) {
      takeEffect(inFlight.index);
      inFlight.effected = true;
    } else {
      returns[inFlight.index] = time;
      clients[client] = null;
      active -= 1;
    }
  }

  const operations: HistoryOperation[] = inputs.map((input, index) => {
    const ret = returns[index];
    const output = outputs[index];
    const base = { clientId: clientIds[index] as number, input, call: calls[index] as number };
    return ret === undefined || output === undefined ? base : { ...base, output, return: ret };
  });
  return { operations, effectTimes };
}
