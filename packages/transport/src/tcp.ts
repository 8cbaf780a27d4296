/**
 * TCP transport (node:net): length-prefixed frames on a byte stream, TCP_NODELAY, keep-alive.
 *
 * The send path writes AppendEntries entries verbatim from the leader's ring: `cork(); write(head);
 * write(slice1); write(slice2); write(status); uncork()` is one writev, and libuv first tries it
 * synchronously. When the kernel takes every byte at once (the usual case), no view is referenced
 * after send() returns: zero copies in user space. When it does not (the socket buffer is full),
 * libuv keeps pointers into the ring until the socket drains, which would break rule 1 of
 * transport.ts: the ring may reuse that space (compaction, truncation, snapshot install) before
 * the rest goes out, and the peer would receive other bytes than those sent. So, still inside
 * send() and while the views are unchanged, the transport:
 *
 *   1. copies the frame into a buffer it owns,
 *   2. flips the frame's status byte, which is the frame's last byte and so certainly not yet
 *      written, to `discard`: whatever the pending bytes turn out to be, the peer drops that frame,
 *   3. writes the copy (status `deliver`) behind it.
 *
 * A socket that already has unsent bytes gets the copy straight away (it cannot take the frame at
 * once anyway). The receiver delivers views of the received chunk when a frame lies in one chunk,
 * and reassembles (one copy) frames that span chunks.
 */
import { type Server, type Socket, connect, createServer } from 'node:net';
import { type EncodedFrame, frameOverheadBytes, framePrefixBytes, frameStatus, joinFrame, readFrameLength } from './codec.js';
import { type ChannelHandlers, type FrameChannel, SocketTransport, type SocketTransportOptions, type WriteOutcome } from './connection.js';
import type { PeerAddress } from './transport.js';

/** Keep-alive probes start after this much idle time, so half-open connections are found. */
const keepAliveDelayMs = 10_000;
/** A refusing side waits this long for its refuse frame to flush before destroying the socket. */
const flushDeadlineMs = 1000;

/**
 * Splits a byte stream into frames. Frames lying in one chunk are handed on as views of it;
 * a frame spanning chunks is reassembled into one buffer. A length prefix above the bound, or
 * below the smallest possible frame, is a framing error: nothing more is parsed.
 */
export class FrameSplitter {
  private readonly prefix = Buffer.alloc(framePrefixBytes);
  private prefixFilled = 0;
  private partial: Buffer | null = null;
  private partialFilled = 0;
  private failed = false;

  constructor(
    /** Largest whole frame accepted, prefix included. */
    public frameBytesMax: number,
    private readonly onFrame: (frame: Uint8Array) => void,
    private readonly onError: (reason: string) => void,
  ) {}

  /** Stops parsing (the owner closed the connection). */
  halt(): void {
    this.failed = true;
  }

  private checkLength(bodyLength: number): boolean {
    const frameLength = bodyLength + framePrefixBytes;
    if (frameLength > this.frameBytesMax) {
      this.failed = true;
      this.onError(`frame of ${frameLength} bytes exceeds the ${this.frameBytesMax}-byte bound`);
      return false;
    }
    if (frameLength < frameOverheadBytes + 1) {
      this.failed = true;
      this.onError(`frame of ${frameLength} bytes is shorter than the ${frameOverheadBytes + 1}-byte minimum`);
      return false;
    }
    return true;
  }

  /** Feeds one chunk from the socket. */
  push(chunk: Buffer): void {
    let at = 0;
    const end = chunk.length;
    while (at < end && !this.failed) {
      let partial = this.partial;
      if (partial === null) {
        if (this.prefixFilled === 0 && end - at >= framePrefixBytes) {
          const bodyLength = readFrameLength(chunk, at);
          if (!this.checkLength(bodyLength)) return;
          const frameLength = bodyLength + framePrefixBytes;
          if (end - at >= frameLength) {
            const frame = chunk.subarray(at, at + frameLength);
            at += frameLength;
            this.onFrame(frame);
            continue;
          }
          partial = Buffer.allocUnsafe(frameLength);
          this.partial = partial;
          this.partialFilled = 0;
        } else {
          const take = Math.min(framePrefixBytes - this.prefixFilled, end - at);
          chunk.copy(this.prefix, this.prefixFilled, at, at + take);
          this.prefixFilled += take;
          at += take;
          if (this.prefixFilled < framePrefixBytes) return;
          this.prefixFilled = 0;
          const bodyLength = readFrameLength(this.prefix, 0);
          if (!this.checkLength(bodyLength)) return;
          partial = Buffer.allocUnsafe(bodyLength + framePrefixBytes);
          this.prefix.copy(partial, 0);
          this.partial = partial;
          this.partialFilled = framePrefixBytes;
          continue;
        }
      }
      const take = Math.min(partial.length - this.partialFilled, end - at);
      chunk.copy(partial, this.partialFilled, at, at + take);
      this.partialFilled += take;
      at += take;
      if (this.partialFilled === partial.length) {
        this.partial = null;
        this.partialFilled = 0;
        this.onFrame(partial);
      }
    }
  }
}

/** A TCP socket as a FrameChannel. */
export class TcpChannel implements FrameChannel {
  readonly closed: Promise<void>;
  private handlers: ChannelHandlers | null = null;
  private readonly splitter: FrameSplitter;
  private reason: string | null = null;

  constructor(
    /** The socket (connected, or connecting when dialed). */
    readonly socket: Socket,
    readonly remote: string,
    frameBytesMax: number,
  ) {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, keepAliveDelayMs);
    this.splitter = new FrameSplitter(
      frameBytesMax,
      (frame) => this.handlers?.onFrame(frame),
      (reason) => this.handlers?.onFramingError(reason),
    );
    let resolveClosed: () => void = () => undefined;
    this.closed = new Promise((resolve) => (resolveClosed = resolve));
    socket.on('connect', () => this.handlers?.onOpen());
    socket.on('data', (chunk: Buffer) => this.splitter.push(chunk));
    socket.on('error', (error: Error) => {
      this.reason ??= error.message;
    });
    socket.on('close', () => {
      this.splitter.halt();
      resolveClosed();
      this.handlers?.onClose(this.reason ?? 'connection closed by the peer');
    });
  }

  setHandlers(handlers: ChannelHandlers): void {
    this.handlers = handlers;
  }

  setFrameBytesMax(bytes: number): void {
    this.splitter.frameBytesMax = bytes;
  }

  pendingBytes(): number {
    return this.socket.writableLength;
  }

  writeOwned(frame: Uint8Array): void {
    this.socket.write(frame);
  }

  writeFrame(frame: EncodedFrame): WriteOutcome {
    const socket = this.socket;
    if (!frame.borrowed) {
      socket.write(frame.chunks[0] as Uint8Array);
      return 'direct';
    }
    if (socket.writableLength > 0) {
      socket.write(joinFrame(frame));
      return 'copied';
    }
    socket.cork();
    for (const chunk of frame.chunks) socket.write(chunk);
    socket.uncork();
    if (socket.writableLength === 0) return 'direct';
    // Partial write: the OS did not take the status byte (the last one), so it can still be changed.
    const copy = joinFrame(frame);
    frame.status[0] = frameStatus.discard;
    socket.write(copy);
    return 'resent';
  }

  close(reason: string): void {
    this.reason ??= reason;
    this.splitter.halt();
    this.socket.destroy();
  }

  closeAfterFlush(reason: string): void {
    this.reason ??= reason;
    this.splitter.halt();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), flushDeadlineMs).unref();
  }
}

/** Options of a TcpTransport (see SocketTransportOptions). */
export type TcpTransportOptions = SocketTransportOptions;

/** The TCP transport. */
export class TcpTransport extends SocketTransport {
  readonly kind = 'tcp' as const;
  private server: Server | null = null;

  constructor(options: TcpTransportOptions) {
    super(options);
  }

  protected listenOn(address: PeerAddress, onAccept: (channel: FrameChannel) => void): Promise<PeerAddress> {
    const server = createServer({ noDelay: true }, (socket) => {
      onAccept(new TcpChannel(socket, `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, this.bounds.frameBytesMax));
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(address.port, address.host, () => {
        server.off('error', reject);
        server.on('error', (error) => this.logger.error({ node: this.id, error: error.message }, 'tcp server error'));
        const bound = server.address();
        if (bound === null || typeof bound === 'string') {
          reject(new Error(`unexpected server address ${String(bound)}`));
          return;
        }
        resolve({ host: bound.address, port: bound.port });
      });
    });
  }

  protected dialTo(address: PeerAddress): FrameChannel {
    const socket = connect({ host: address.host, port: address.port, noDelay: true });
    return new TcpChannel(socket, `${address.host}:${address.port}`, this.bounds.frameBytesMax);
  }

  protected closeListener(): Promise<void> {
    const server = this.server;
    if (server === null) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }
}
