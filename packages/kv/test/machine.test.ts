/**
 * The KV state machine: each command's result and effect; client sessions that make a retried write
 * apply exactly once and return its original result (thesis §6.3), with several writes in flight per
 * client, acknowledgements that release cached results, and a session table bounded by count (least
 * recently active evicted) and expired by log index or by command time, never by a clock of its own;
 * malformed entries answered with the same refusal on every replica and changing nothing; size
 * bounds; and snapshots that round-trip, are byte-identical across replicas fed the same entries
 * (state machine safety, §5.4.3, needs exactly this determinism), and are refused whole, leaving the
 * state untouched, when corrupt.
 */
import { AssertionError, Prng } from '@raftlab/core';
import { describe, expect, test } from 'vitest';
import { type KvCommand, type KvMachineConfig, type KvResult, KvError, KvMachine, encodeCommand } from '../src/index.js';

function encode(command: KvCommand): Uint8Array {
  const result = encodeCommand(command);
  if (!result.ok) throw new Error(`encode failed: ${result.detail}`);
  return result.bytes;
}

/** A machine fed encoded commands at consecutive log indexes, with helpers for one client. */
class Driver {
  readonly machine: KvMachine;
  index = 0;
  timeMs = 0;
  constructor(config: KvMachineConfig = {}) {
    this.machine = new KvMachine(config);
  }
  applyBytes(bytes: Uint8Array): KvResult {
    this.index += 1;
    return this.machine.apply(this.index, bytes);
  }
  apply(command: KvCommand): KvResult {
    return this.applyBytes(encode(command));
  }
  register(): number {
    const result = this.apply({ op: 'register', timeMs: this.timeMs });
    if (result.op !== 'register') throw new Error(`register failed: ${JSON.stringify(result)}`);
    return result.clientId;
  }
  put(clientId: number, sequence: number, key: string, value: string, lowestPendingSequence = sequence): KvResult {
    return this.apply({ op: 'put', timeMs: this.timeMs, session: { clientId, sequence, lowestPendingSequence }, key, value });
  }
  delete(clientId: number, sequence: number, key: string, lowestPendingSequence = sequence): KvResult {
    return this.apply({ op: 'delete', timeMs: this.timeMs, session: { clientId, sequence, lowestPendingSequence }, key });
  }
  cas(clientId: number, sequence: number, key: string, expected: string | null, value: string, lowestPendingSequence = sequence): KvResult {
    return this.apply({ op: 'cas', timeMs: this.timeMs, session: { clientId, sequence, lowestPendingSequence }, key, expected, value });
  }
  get(key: string): KvResult {
    return this.apply({ op: 'get', timeMs: this.timeMs, key });
  }
}

describe('commands', () => {
  test('put stores the value and returns the previous one, null when the key was absent', () => {
    const driver = new Driver();
    const client = driver.register();
    expect(driver.put(client, 1, 'a', 'one')).toEqual({ op: 'put', ok: true, previous: null });
    expect(driver.put(client, 2, 'a', 'two')).toEqual({ op: 'put', ok: true, previous: 'one' });
    expect(driver.machine.read('a')).toBe('two');
  });

  test('get through the log and read from local state both see the applied value', () => {
    const driver = new Driver();
    const client = driver.register();
    expect(driver.get('a')).toEqual({ op: 'get', ok: true, value: null });
    driver.put(client, 1, 'a', 'x');
    expect(driver.get('a')).toEqual({ op: 'get', ok: true, value: 'x' });
    expect(driver.machine.read('a')).toBe('x');
    expect(driver.machine.read('b')).toBeNull();
  });

  test('delete removes the key and says whether it existed', () => {
    const driver = new Driver();
    const client = driver.register();
    driver.put(client, 1, 'a', 'x');
    expect(driver.delete(client, 2, 'a')).toEqual({ op: 'delete', ok: true, existed: true });
    expect(driver.machine.read('a')).toBeNull();
    expect(driver.delete(client, 3, 'a')).toEqual({ op: 'delete', ok: true, existed: false });
    expect(driver.machine.stats()).toMatchObject({ keyCount: 0, dataBytes: 0 });
  });

  test('cas swaps only when the key holds the expected value, and reports the actual value otherwise', () => {
    const driver = new Driver();
    const client = driver.register();
    expect(driver.cas(client, 1, 'a', 'x', 'y')).toEqual({ op: 'cas', ok: false, actual: null });
    expect(driver.machine.read('a')).toBeNull();
    expect(driver.cas(client, 2, 'a', null, 'x')).toEqual({ op: 'cas', ok: true });
    expect(driver.cas(client, 3, 'a', null, 'z')).toEqual({ op: 'cas', ok: false, actual: 'x' });
    expect(driver.cas(client, 4, 'a', 'x', 'y')).toEqual({ op: 'cas', ok: true });
    expect(driver.machine.read('a')).toBe('y');
    expect(driver.cas(client, 5, 'a', '', 'w')).toEqual({ op: 'cas', ok: false, actual: 'y' });
  });

  test('the empty string is a value, distinct from absence', () => {
    const driver = new Driver();
    const client = driver.register();
    driver.put(client, 1, 'a', '');
    expect(driver.machine.read('a')).toBe('');
    expect(driver.cas(client, 2, 'a', null, 'x')).toEqual({ op: 'cas', ok: false, actual: '' });
    expect(driver.cas(client, 3, 'a', '', 'x')).toEqual({ op: 'cas', ok: true });
  });

  test('stats count keys and UTF-8 bytes of keys and values', () => {
    const driver = new Driver();
    const client = driver.register();
    driver.put(client, 1, 'é', '😀'); // 2 + 4 bytes
    driver.put(client, 2, 'b', 'xyz'); // 1 + 3 bytes
    driver.put(client, 3, 'é', 'a'); // 2 + 1 bytes
    expect(driver.machine.stats()).toMatchObject({ keyCount: 2, dataBytes: 7, sessionCount: 1, appliedIndex: 4 });
  });
});

describe('sessions: exactly-once writes (thesis §6.3)', () => {
  test('register assigns the register entry index as the client id', () => {
    const driver = new Driver();
    driver.get('x');
    driver.get('x');
    expect(driver.register()).toBe(3);
    expect(driver.register()).toBe(4);
    expect(driver.machine.hasSession(3)).toBe(true);
  });

  test('a retried put applies once and returns the original result, even after another client wrote', () => {
    const driver = new Driver();
    const alice = driver.register();
    const bob = driver.register();
    driver.put(alice, 1, 'a', 'first');
    const original = driver.put(alice, 2, 'a', 'second');
    expect(original).toEqual({ op: 'put', ok: true, previous: 'first' });
    driver.put(bob, 1, 'a', 'bob');
    // The retry reaches the log again (say, after a leader change): it must not overwrite bob's value.
    expect(driver.put(alice, 2, 'a', 'second')).toEqual(original);
    expect(driver.machine.read('a')).toBe('bob');
  });

  test('a retried cas returns its original success even though the value has moved on', () => {
    const driver = new Driver();
    const client = driver.register();
    expect(driver.cas(client, 1, 'a', null, 'x')).toEqual({ op: 'cas', ok: true });
    driver.put(client, 2, 'a', 'y', 1);
    expect(driver.cas(client, 1, 'a', null, 'x', 1)).toEqual({ op: 'cas', ok: true });
    expect(driver.machine.read('a')).toBe('y');
  });

  test('a retried delete returns existed: true although the key is now absent', () => {
    const driver = new Driver();
    const client = driver.register();
    driver.put(client, 1, 'a', 'x');
    expect(driver.delete(client, 2, 'a')).toEqual({ op: 'delete', ok: true, existed: true });
    expect(driver.delete(client, 2, 'a')).toEqual({ op: 'delete', ok: true, existed: true });
  });

  test('writes in flight together apply once each, in whatever order they reach the log', () => {
    const driver = new Driver();
    const client = driver.register();
    expect(driver.put(client, 3, 'c', '3', 1)).toMatchObject({ ok: true });
    expect(driver.put(client, 1, 'a', '1', 1)).toMatchObject({ ok: true });
    expect(driver.put(client, 2, 'b', '2', 1)).toMatchObject({ ok: true });
    expect(driver.put(client, 1, 'a', 'changed', 1)).toEqual({ op: 'put', ok: true, previous: null });
    expect(driver.machine.read('a')).toBe('1');
  });

  test('an acknowledged sequence is never applied again: a late duplicate is refused', () => {
    const driver = new Driver();
    const client = driver.register();
    driver.put(client, 1, 'a', 'x');
    driver.put(client, 2, 'a', 'y'); // lowestPendingSequence 2 acknowledges sequence 1
    expect(driver.put(client, 1, 'a', 'x', 1)).toMatchObject({ op: 'refused', reason: 'sequence-acknowledged' });
    expect(driver.machine.read('a')).toBe('y');
  });

  test('a write naming an unknown session is refused, not applied', () => {
    const driver = new Driver();
    expect(driver.put(99, 1, 'a', 'x')).toMatchObject({ op: 'refused', reason: 'unknown-session', detail: expect.stringMatching(/client 99/) });
    expect(driver.machine.read('a')).toBeNull();
  });

  test('the window of unacknowledged responses is bounded by count; acknowledging frees it', () => {
    const driver = new Driver({ sessionResponsesCountMax: 2 });
    const client = driver.register();
    driver.put(client, 1, 'a', '1', 1);
    driver.put(client, 2, 'a', '2', 1);
    expect(driver.put(client, 3, 'a', '3', 1)).toMatchObject({ op: 'refused', reason: 'session-window-full' });
    expect(driver.machine.read('a')).toBe('2');
    // Retries of cached sequences still answer while the window is full.
    expect(driver.put(client, 2, 'a', '2', 1)).toEqual({ op: 'put', ok: true, previous: '1' });
    expect(driver.put(client, 3, 'a', '3', 3)).toEqual({ op: 'put', ok: true, previous: '2' });
  });

  test('the window is bounded by cached bytes, yet a single large response is always admitted', () => {
    const driver = new Driver({ sessionResponseBytesMax: 10 });
    const client = driver.register();
    driver.put(client, 1, 'big', 'x'.repeat(100), 1);
    expect(driver.put(client, 2, 'big', 'y', 2)).toEqual({ op: 'put', ok: true, previous: 'x'.repeat(100) });
    // Sequence 2 caches 100 bytes, over the bound: until it is acknowledged nothing more is admitted.
    expect(driver.put(client, 3, 'other', 'z', 2)).toMatchObject({ op: 'refused', reason: 'session-window-full' });
    expect(driver.machine.read('other')).toBeNull();
    expect(driver.put(client, 3, 'other', 'z', 3)).toEqual({ op: 'put', ok: true, previous: null });
  });

  test('a refused write changes nothing and can be retried once there is room', () => {
    const driver = new Driver({ dataBytesMax: 10 });
    const client = driver.register();
    driver.put(client, 1, 'a', '12345678'); // 9 bytes
    expect(driver.put(client, 2, 'b', 'xx')).toMatchObject({ op: 'refused', reason: 'store-full' });
    expect(driver.machine.read('b')).toBeNull();
    driver.delete(client, 3, 'a', 2);
    expect(driver.put(client, 2, 'b', 'xx', 2)).toEqual({ op: 'put', ok: true, previous: null });
  });
});

describe('session table: bounded and expiring deterministically', () => {
  test('registering into a full table evicts the least recently active session', () => {
    const driver = new Driver({ sessionCountMax: 2 });
    const a = driver.register();
    const b = driver.register();
    driver.put(a, 1, 'k', 'a'); // a is now more recent than b
    const c = driver.register();
    expect([driver.machine.hasSession(a), driver.machine.hasSession(b), driver.machine.hasSession(c)]).toEqual([true, false, true]);
    expect(driver.put(b, 1, 'k', 'b')).toMatchObject({ op: 'refused', reason: 'unknown-session' });
    expect(driver.machine.stats().sessionCount).toBe(2);
  });

  test('a retry after eviction is refused rather than applied a second time', () => {
    const driver = new Driver({ sessionCountMax: 1 });
    const a = driver.register();
    driver.put(a, 1, 'k', 'a');
    const b = driver.register();
    driver.put(b, 1, 'k', 'b');
    expect(driver.put(a, 1, 'k', 'a')).toMatchObject({ op: 'refused', reason: 'unknown-session' });
    expect(driver.machine.read('k')).toBe('b');
  });

  test('a session idle for more than sessionExpiryIndexCount log indexes expires', () => {
    const driver = new Driver({ sessionExpiryIndexCount: 3, sessionExpiryMs: null });
    const a = driver.register(); // index 1
    const b = driver.register(); // index 2
    driver.get('x'); // 3
    driver.put(b, 1, 'k', 'v'); // 4: b active
    expect(driver.machine.hasSession(a)).toBe(true); // 4 - 1 = 3, not more than 3
    driver.get('x'); // 5: a idle for 4 indexes
    expect(driver.machine.hasSession(a)).toBe(false);
    expect(driver.machine.hasSession(b)).toBe(true);
  });

  test('a session idle for more than sessionExpiryMs of command time expires', () => {
    const driver = new Driver({ sessionExpiryMs: 1000 });
    driver.timeMs = 10_000;
    const a = driver.register();
    driver.timeMs = 10_500;
    const b = driver.register();
    driver.timeMs = 11_000;
    driver.get('x');
    expect(driver.machine.hasSession(a)).toBe(true);
    driver.timeMs = 11_001;
    driver.get('x');
    expect(driver.machine.hasSession(a)).toBe(false);
    expect(driver.machine.hasSession(b)).toBe(true);
  });

  test('command time only moves forward: an entry stamped earlier does not turn the clock back', () => {
    const driver = new Driver({ sessionExpiryMs: 1000 });
    driver.timeMs = 5000;
    const a = driver.register();
    driver.timeMs = 7000;
    driver.get('x'); // expires a
    driver.timeMs = 100; // a proposer with a slow clock
    driver.get('x');
    expect(driver.machine.clockMs).toBe(7000);
    expect(driver.machine.hasSession(a)).toBe(false);
  });

  test('an expired client that retries is refused, so the write cannot apply twice', () => {
    const driver = new Driver({ sessionExpiryIndexCount: 2, sessionExpiryMs: null });
    const client = driver.register();
    driver.put(client, 1, 'k', 'v');
    driver.get('x');
    driver.get('x');
    driver.get('x');
    expect(driver.put(client, 1, 'k', 'v')).toMatchObject({ op: 'refused', reason: 'unknown-session' });
  });
});

describe('malformed entries and bounds', () => {
  test('a malformed entry yields the same refusal on every replica and changes nothing but the applied index', () => {
    const replicas = [new Driver(), new Driver()];
    const garbage = new Uint8Array([1, 3, 0, 1, 1, 1, 1, 0x61, 5, 0xff, 0xfe, 0xfd, 0xfc, 0xfb]);
    const results = replicas.map((replica) => {
      const client = replica.register();
      replica.put(client, 1, 'a', 'x');
      const before = replica.machine.snapshot();
      const result = replica.applyBytes(garbage);
      const after = new KvMachine();
      after.restore(replica.machine.snapshot());
      // Same state as before except for the applied index.
      const expected = new KvMachine();
      expected.restore(before);
      expect(after.read('a')).toBe('x');
      expect(after.stats()).toEqual({ ...expected.stats(), appliedIndex: 3 });
      return result;
    });
    expect(results[0]).toMatchObject({ op: 'refused', reason: 'malformed-command', detail: expect.stringMatching(/invalid UTF-8/) });
    expect(results[1]).toEqual(results[0]);
  });

  test('an empty entry is refused as malformed', () => {
    expect(new Driver().applyBytes(new Uint8Array(0))).toMatchObject({ op: 'refused', reason: 'malformed-command' });
  });

  test('keys and values over the machine limits are refused at apply, whatever the proposer checked', () => {
    const driver = new Driver({ keyBytesMax: 3, valueBytesMax: 3 });
    const client = driver.register();
    expect(driver.put(client, 1, 'long', 'v')).toMatchObject({ op: 'refused', reason: 'key-too-large' });
    expect(driver.put(client, 1, 'k', 'long')).toMatchObject({ op: 'refused', reason: 'value-too-large' });
    expect(driver.machine.stats().keyCount).toBe(0);
  });

  test('apply at an index not above the applied index is a programmer error', () => {
    const driver = new Driver();
    driver.register();
    expect(() => driver.machine.apply(1, encode({ op: 'register', timeMs: 0 }))).toThrow(AssertionError);
    expect(() => driver.machine.apply(1.5, encode({ op: 'register', timeMs: 0 }))).toThrow(AssertionError);
  });

  test('a bad configuration throws naming the field', () => {
    expect(() => new KvMachine({ sessionCountMax: 0 })).toThrow(/sessionCountMax: 0/);
    expect(() => new KvMachine({ sessionExpiryMs: -5 })).toThrow(KvError);
    expect(new KvMachine({ sessionExpiryMs: null }).config.sessionExpiryMs).toBeNull();
  });
});

/** A random mix of commands, some malformed, from a handful of clients, as encoded entries. */
function randomEntries(seed: number, count: number): Uint8Array[] {
  const prng = new Prng(seed);
  const entries: Uint8Array[] = [];
  const clients: { id: number; sequence: number; lowest: number }[] = [];
  const keys = ['a', 'b', 'c', 'd', 'ключ', '😀'];
  let timeMs = 1000;
  for (let index = 1; index <= count; index++) {
    timeMs += prng.nextInt(50);
    const roll = prng.nextFloat();
    const key = prng.pick(keys);
    const value = prng.chance(0.1) ? '' : `v${prng.nextInt(20)}`;
    if (clients.length === 0 || roll < 0.05) {
      entries.push(encode({ op: 'register', timeMs }));
      clients.push({ id: index, sequence: 0, lowest: 1 });
      continue;
    }
    if (roll < 0.1) {
      const garbage = new Uint8Array(prng.nextInt(12));
      for (let i = 0; i < garbage.length; i++) garbage[i] = prng.nextInt(256);
      entries.push(garbage);
      continue;
    }
    if (roll < 0.2) {
      entries.push(encode({ op: 'get', timeMs, key }));
      continue;
    }
    const client = prng.pick(clients);
    // Mostly new writes; sometimes a retry of a recent one; sometimes an acknowledgement jump.
    const sequence = prng.chance(0.2) && client.sequence > 0 ? Math.max(client.lowest, client.sequence - prng.nextInt(3)) : ++client.sequence;
    if (prng.chance(0.3)) client.lowest = Math.min(sequence, client.lowest + 1 + prng.nextInt(2));
    const session = { clientId: client.id, sequence: Math.max(sequence, 1), lowestPendingSequence: Math.min(client.lowest, Math.max(sequence, 1)) };
    const which = prng.nextInt(3);
    if (which === 0) entries.push(encode({ op: 'put', timeMs, session, key, value }));
    else if (which === 1) entries.push(encode({ op: 'delete', timeMs, session, key }));
    else entries.push(encode({ op: 'cas', timeMs, session, key, expected: prng.chance(0.3) ? null : `v${prng.nextInt(20)}`, value }));
  }
  return entries;
}

describe('snapshots', () => {
  const config: KvMachineConfig = { sessionCountMax: 8, sessionResponsesCountMax: 4, sessionExpiryMs: 5000 };

  test('two machines fed the same entries return the same results and byte-identical snapshots', () => {
    for (const seed of [1, 2, 3]) {
      const entries = randomEntries(seed, 3000);
      const [first, second] = [new KvMachine(config), new KvMachine(config)];
      entries.forEach((entry, i) => {
        expect(second.apply(i + 1, entry.slice())).toEqual(first.apply(i + 1, entry));
        if (i % 500 === 0) expect(second.snapshot()).toEqual(first.snapshot());
      });
      expect(second.snapshot()).toEqual(first.snapshot());
      expect(first.stats().sessionCount).toBeGreaterThan(0);
      expect(first.stats().keyCount).toBeGreaterThan(0);
    }
  });

  test('a restored machine continues exactly like the original, retries included', () => {
    const entries = randomEntries(7, 4000);
    const original = new KvMachine(config);
    entries.slice(0, 2000).forEach((entry, i) => original.apply(i + 1, entry));
    const restored = new KvMachine(config);
    restored.restore(original.snapshot());
    expect(restored.snapshot()).toEqual(original.snapshot());
    expect(restored.stats()).toEqual(original.stats());
    entries.slice(2000).forEach((entry, i) => {
      expect(restored.apply(2001 + i, entry)).toEqual(original.apply(2001 + i, entry));
    });
    expect(restored.snapshot()).toEqual(original.snapshot());
  });

  test('the cached results of a session survive a snapshot: a retry after restore is not applied again', () => {
    const driver = new Driver();
    const client = driver.register();
    driver.put(client, 1, 'a', 'x');
    const original = driver.put(client, 2, 'a', 'y', 1);
    const restored = new KvMachine();
    restored.restore(driver.machine.snapshot());
    const retry = encode({ op: 'put', timeMs: 0, session: { clientId: client, sequence: 2, lowestPendingSequence: 1 }, key: 'a', value: 'y' });
    restored.apply(10, encode({ op: 'put', timeMs: 0, session: { clientId: client, sequence: 3, lowestPendingSequence: 1 }, key: 'a', value: 'z' }));
    expect(restored.apply(11, retry)).toEqual(original);
    expect(restored.read('a')).toBe('z');
  });

  test('the snapshot depends on the state, not on the order keys were written in', () => {
    const build = (order: readonly string[], value: string): Uint8Array => {
      const driver = new Driver();
      const client = driver.register();
      driver.put(client, 1, order[0] as string, value);
      driver.put(client, 2, order[1] as string, value, 2);
      driver.delete(client, 3, 'absent', 3); // acknowledges both puts: the cached responses agree too
      return driver.machine.snapshot();
    };
    expect(build(['b', 'a'], 'v')).toEqual(build(['a', 'b'], 'v'));
    expect(build(['b', 'a'], 'w')).not.toEqual(build(['a', 'b'], 'v'));
  });

  test('restore refuses every single-byte corruption and every truncation, leaving the state untouched', () => {
    const driver = new Driver();
    const client = driver.register();
    driver.put(client, 1, 'a', 'x');
    driver.cas(client, 2, 'b', null, 'y', 1);
    const snapshot = driver.machine.snapshot();
    const target = new KvMachine();
    const targetClient = target.apply(1, encode({ op: 'register', timeMs: 0 }));
    target.apply(2, encode({ op: 'put', timeMs: 0, session: { clientId: 1, sequence: 1, lowestPendingSequence: 1 }, key: 'keep', value: 'me' }));
    expect(targetClient).toMatchObject({ clientId: 1 });
    const before = target.snapshot();
    for (let i = 0; i < snapshot.length; i++) {
      for (const flip of [0x01, 0x80, 0xff]) {
        const corrupt = snapshot.slice();
        corrupt[i] = (corrupt[i] as number) ^ flip;
        expect(() => target.restore(corrupt), `byte ${i} ^ ${flip}`).toThrow(KvError);
      }
    }
    for (let length = 0; length < snapshot.length; length++) {
      expect(() => target.restore(snapshot.subarray(0, length)), `cut to ${length}`).toThrow(/malformed kv snapshot/);
    }
    expect(target.snapshot()).toEqual(before);
    expect(target.read('keep')).toBe('me');
  });

  test('restore refuses a snapshot that breaks this machine configuration, with the reason', () => {
    const driver = new Driver();
    const client = driver.register();
    driver.put(client, 1, 'a', 'a long value');
    const snapshot = driver.machine.snapshot();
    try {
      new KvMachine({ valueBytesMax: 4 }).restore(snapshot);
      expect.unreachable('restore accepted a value over valueBytesMax');
    } catch (error) {
      expect(error).toBeInstanceOf(KvError);
      expect((error as KvError).code).toBe('malformed-snapshot');
      expect((error as KvError).message).toMatch(/value of 12 bytes .* outside \[0, 4\]/);
    }
  });
});
