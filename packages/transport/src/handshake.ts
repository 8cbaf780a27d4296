/**
 * The connection handshake: both sides prove they hold the cluster secret, for this cluster, this
 * pair of nodes, this protocol version and this connection, before any message flows.
 *
 *   acceptor -> dialer   challenge [version, nonceA]
 *   dialer   -> acceptor hello     [version, clusterId, from, to, nonceD,
 *                                   HMAC(secret, "hello" | clusterId | from | to | version | nonceA | nonceD)]
 *   acceptor -> dialer   welcome   [version, from = acceptor,
 *                                   HMAC(secret, "welcome" | clusterId | acceptor | dialer | version | nonceA | nonceD)]
 *                     or refuse    [version, reason]   and the acceptor closes
 *
 * The acceptor speaks first so that the dialer's proof covers a nonce the acceptor just chose: a
 * recorded hello cannot be replayed. The welcome's proof covers the dialer's nonce, so the dialer
 * knows it reached a holder of the secret too. A stranger, a wrong secret, another cluster, a node
 * id this node does not know, a connection meant for another node or another protocol version is
 * refused with a reason that both sides log. HMAC-SHA256 from node:crypto; proofs are compared in
 * constant time. After the handshake only the dialer sends (see connection.ts for the topology).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { NodeId } from '@raftlab/core';
import { type HandshakeFrame, decodeHandshake, encodeHandshakeFrame, handshakeTypeCode, nonceBytes, refuseReasonLengthMax } from './codec.js';

/** The wire protocol version this build speaks. A peer speaking another one is refused. */
export const protocolVersion = 1;

/** Largest handshake frame: the bound on any frame before a connection is authenticated. */
export const handshakeBytesMax = 4096;

/** What a node proves about itself. */
export interface HandshakeIdentity {
  readonly clusterId: string;
  readonly secret: Uint8Array;
  readonly id: NodeId;
  readonly protocolVersion: number;
}

function proof(label: 'hello' | 'welcome', identity: HandshakeIdentity, acceptor: NodeId, dialer: NodeId, challengeNonce: Uint8Array, helloNonce: Uint8Array): Buffer {
  // JSON keeps the fields unambiguous (no separator can be forged inside clusterId); nonces are fixed-size.
  const fields = JSON.stringify([label, identity.clusterId, dialer, acceptor, identity.protocolVersion]);
  return createHmac('sha256', identity.secret).update(fields).update(challengeNonce).update(helloNonce).digest();
}

function sameProof(expected: Buffer, actual: Uint8Array): boolean {
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** Outcome of feeding a handshake frame to one side. */
export type HandshakeStep =
  /** Send `reply` and wait for the next frame. */
  | { readonly kind: 'continue'; readonly reply: Buffer }
  /** Authenticated: send `reply` if present; `peer` is the other node. */
  | { readonly kind: 'accepted'; readonly peer: NodeId; readonly reply: Buffer | null }
  /** Failed: send `reply` if present (a refuse frame), log `reason`, close. */
  | { readonly kind: 'refused'; readonly reason: string; readonly peer: NodeId | null; readonly reply: Buffer | null };

/** A refuse frame carrying `reason` (clipped). */
export function encodeRefuse(version: number, reason: string): Buffer {
  return encodeHandshakeFrame([handshakeTypeCode.refuse, version, reason.slice(0, refuseReasonLengthMax)]);
}

/** The accepting side: sends the challenge, checks the hello, answers welcome or refuse. */
export class AcceptorHandshake {
  private readonly challengeNonce: Buffer = randomBytes(nonceBytes);
  private done = false;

  constructor(
    private readonly identity: HandshakeIdentity,
    private readonly isKnownPeer: (id: NodeId) => boolean,
  ) {}

  /** The challenge to send as soon as the connection is up. */
  challenge(): Buffer {
    return encodeHandshakeFrame([handshakeTypeCode.challenge, this.identity.protocolVersion, this.challengeNonce]);
  }

  /** Feeds the dialer's frame. */
  onFrame(frame: Uint8Array): HandshakeStep {
    const identity = this.identity;
    if (this.done) return this.refuse('handshake frame after the handshake', null);
    this.done = true;
    const decoded = decodeHandshake(frame, identity.protocolVersion);
    if (!decoded.ok) return this.refuse(decoded.reason, null);
    const hello = decoded.frame;
    if (hello.type === 'refuse') return { kind: 'refused', reason: `refused by the dialer: ${hello.reason}`, peer: null, reply: null };
    if (hello.type !== 'hello') return this.refuse(`expected hello, got ${hello.type}`, null);
    if (hello.clusterId !== identity.clusterId) {
      return this.refuse(`cluster id ${JSON.stringify(hello.clusterId)}, this node is in ${JSON.stringify(identity.clusterId)}`, null);
    }
    if (hello.to !== identity.id) return this.refuse(`hello addressed to node ${hello.to}, this is node ${identity.id}`, hello.from);
    if (hello.from === identity.id || !this.isKnownPeer(hello.from)) return this.refuse(`unknown node id ${hello.from}`, null);
    const expected = proof('hello', identity, identity.id, hello.from, this.challengeNonce, hello.nonce);
    if (!sameProof(expected, hello.proof)) return this.refuse(`node ${hello.from} failed the proof (wrong cluster secret?)`, null);
    const reply = encodeHandshakeFrame([
      handshakeTypeCode.welcome,
      identity.protocolVersion,
      identity.id,
      proof('welcome', identity, identity.id, hello.from, this.challengeNonce, hello.nonce),
    ]);
    return { kind: 'accepted', peer: hello.from, reply };
  }

  private refuse(reason: string, peer: NodeId | null): HandshakeStep {
    return { kind: 'refused', reason, peer, reply: encodeRefuse(this.identity.protocolVersion, reason) };
  }
}

/** The dialing side: answers the challenge with a hello, checks the welcome. */
export class DialerHandshake {
  private readonly helloNonce: Buffer = randomBytes(nonceBytes);
  private challengeNonce: Uint8Array | null = null;

  constructor(
    private readonly identity: HandshakeIdentity,
    /** The node this connection is meant to reach. */
    private readonly peer: NodeId,
  ) {}

  /** Feeds the acceptor's frame. */
  onFrame(frame: Uint8Array): HandshakeStep {
    const identity = this.identity;
    const decoded = decodeHandshake(frame, identity.protocolVersion);
    if (!decoded.ok) return this.fail(`peer sent ${decoded.reason}`);
    const received: HandshakeFrame = decoded.frame;
    if (received.type === 'refuse') return { kind: 'refused', reason: `refused by the peer: ${received.reason}`, peer: this.peer, reply: null };
    if (this.challengeNonce === null) {
      if (received.type !== 'challenge') return this.fail(`expected a challenge, got ${received.type}`);
      this.challengeNonce = Buffer.from(received.nonce);
      const reply = encodeHandshakeFrame([
        handshakeTypeCode.hello,
        identity.protocolVersion,
        identity.clusterId,
        identity.id,
        this.peer,
        this.helloNonce,
        proof('hello', identity, this.peer, identity.id, this.challengeNonce, this.helloNonce),
      ]);
      return { kind: 'continue', reply };
    }
    if (received.type !== 'welcome') return this.fail(`expected welcome, got ${received.type}`);
    if (received.from !== this.peer) return this.fail(`dialed node ${this.peer}, reached node ${received.from}`);
    const expected = proof('welcome', identity, this.peer, identity.id, this.challengeNonce, this.helloNonce);
    if (!sameProof(expected, received.proof)) return this.fail(`node ${this.peer} failed the proof (wrong cluster secret?)`);
    return { kind: 'accepted', peer: this.peer, reply: null };
  }

  /** Refuses with a reason the acceptor can log too (a refuse frame in this side's version). */
  private fail(reason: string): HandshakeStep {
    return { kind: 'refused', reason, peer: this.peer, reply: encodeRefuse(this.identity.protocolVersion, reason) };
  }
}

/** A secret given as text (UTF-8) or bytes, as bytes. */
export function secretBytes(secret: string | Uint8Array): Uint8Array {
  return typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
}
