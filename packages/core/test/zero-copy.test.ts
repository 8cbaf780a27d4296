/**
 * The zero-copy promise (DESIGN.md): across a 3-node run of 10,000 proposals each entry is encoded
 * exactly once (by the leader that appends it), AppendEntries carry views of the leader's ring
 * buffer rather than re-encoded copies, followers copy each entry once into their own ring, and
 * the frames stay valid msgpack that msgpackr decodes to [term, kind, data].
 */
import { unpack } from 'msgpackr';
import { describe, expect, test } from 'vitest';
import { EntryReader, type NodeId, RaftNode, type RemoteMessage, encodeEntry, entryKindCode, termMax } from '../src/index.js';

describe('zero-copy replication', () => {
  test('10,000 proposals: encoded once each, replicated as views of the leader ring, copied once per follower', () => {
    const ids = [1, 2, 3];
    const nodes = new Map<NodeId, RaftNode>(ids.map((id) => [id, new RaftNode({ id, peers: ids, verify: true })]));
    const leader = nodes.get(1) as RaftNode;
    let appendsChecked = 0;
    let entriesSent = 0;
    const applied = new Map<NodeId, number>(ids.map((id) => [id, 0]));
    const reader = new EntryReader();
    const pump = (): void => {
      for (let guard = 0; guard < 10_000; guard++) {
        let any = false;
        for (const [id, node] of nodes) {
          if (!node.hasReady()) continue;
          any = true;
          const ready = node.ready();
          reader.reset(ready.committedEntries);
          let count = 0;
          while (reader.next()) if (reader.kind === entryKindCode.normal) count += 1;
          applied.set(id, (applied.get(id) as number) + count);
          // Messages are delivered in the sender's turn, before it can mutate its ring.
          for (const message of ready.messages as RemoteMessage[]) {
            if (message.type === 'append' && message.from === 1 && message.entries.count > 0) {
              for (const slice of message.entries.slices) expect(slice.buffer).toBe(leader.log.buffer);
              appendsChecked += 1;
              entriesSent += message.entries.count;
            }
            (nodes.get(message.to) as RaftNode).step(message);
          }
          node.advance(ready);
        }
        if (!any) return;
      }
      throw new Error('pump did not settle');
    };
    leader.step({ type: 'hup', from: 1, to: 1, term: 0, transfer: false });
    pump();
    expect(leader.role).toBe('leader');
    const payload = new Uint8Array(16);
    for (let batch = 0; batch < 10; batch++) {
      for (let i = 0; i < 1000; i++) {
        payload[0] = i & 0xff;
        const result = leader.propose(payload);
        expect(result.ok).toBe(true);
      }
      pump();
    }
    // One empty entry from the leader's election, then 10,000 user entries, encoded once, by the leader.
    const encoded = ids.map((id) => (nodes.get(id) as RaftNode).log.framesEncoded);
    expect(encoded).toEqual([10_001, 0, 0]);
    // Each follower copied each entry exactly once.
    expect((nodes.get(2) as RaftNode).log.framesCopied).toBe(10_001);
    expect((nodes.get(3) as RaftNode).log.framesCopied).toBe(10_001);
    expect(leader.log.framesCopied).toBe(0);
    expect(appendsChecked).toBeGreaterThanOrEqual(20);
    expect(entriesSent).toBe(2 * 10_001);
    for (const id of ids) expect(applied.get(id)).toBe(10_000);
    // Follower frames are byte-identical to the leader's.
    for (const index of [1, 2, 5000, 10_001]) {
      expect((nodes.get(2) as RaftNode).log.frameAt(index)).toEqual(leader.log.frameAt(index));
    }
  });

  test('entry frames are valid msgpack: msgpackr decodes [term, kind, data] for every size class', () => {
    const terms = [0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, termMax];
    const sizes = [0, 1, 255, 256, 65_535, 65_536, 70_000];
    for (const term of terms) {
      for (const size of sizes) {
        const data = new Uint8Array(size);
        for (let i = 0; i < size; i++) data[i] = (i * 31) & 0xff;
        const decoded = unpack(encodeEntry(term, 'normal', data)) as [number | bigint, number, Uint8Array];
        expect(Number(decoded[0])).toBe(term);
        expect(decoded[1]).toBe(entryKindCode.normal);
        expect(Buffer.from(decoded[2]).equals(Buffer.from(data)), `data of ${size} bytes at term ${term}`).toBe(true);
      }
    }
    const empty = unpack(encodeEntry(7, 'empty', new Uint8Array(0))) as [number, number, Uint8Array];
    expect(empty[0]).toBe(7);
    expect(empty[1]).toBe(entryKindCode.empty);
    expect(empty[2].length).toBe(0);
  });
});
