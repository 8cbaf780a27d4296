/**
 * WebSocket transport (the ws package): one binary WebSocket message per frame, with the same codec,
 * handshake, bounds and policies as TCP (connection.ts). perMessageDeflate is off on both sides
 * (entries are small and compressing them costs more than it saves on a LAN); maxPayload is
 * frameBytesMax; ws turns on TCP_NODELAY itself.
 *
 * Copies: a WebSocket message must be one contiguous buffer, so send() joins the frame (one copy of
 * the entries, an owned buffer, so no view of the ring outlives send()). The receiver hands on views
 * of the received message.
 *
 * Masking: RFC 6455 makes clients mask every frame, and ws does that (and the server unmasks) with a
 * byte-by-byte JavaScript XOR unless the optional native addon is installed; on 21 KB appends that
 * loop was 40% of the CPU and capped throughput near 40 MB/s. The dialer therefore uses all-zero
 * masking keys (ws's `generateMask` hook): the frames stay well-formed (mask bit set), ws skips the
 * XOR on both sides, and the data goes out as the joined buffer itself. Masking exists to protect
 * HTTP intermediaries from traffic forged by scripts in browsers; this link carries no browser
 * traffic and authenticates both ends before any message flows.
 *
 * Known limit: ws applies maxPayload before this transport sees a message, so an unauthenticated
 * client can make the server buffer up to frameBytesMax before the handshake refuses it (the TCP
 * transport bounds pre-handshake frames at handshakeBytesMax).
 */
import { WebSocket, WebSocketServer } from 'ws';
import { type EncodedFrame, joinFrame } from './codec.js';
import { type ChannelHandlers, type FrameChannel, SocketTransport, type SocketTransportOptions, type WriteOutcome } from './connection.js';
import type { PeerAddress } from './transport.js';

/** A refusing side waits this long for its close handshake before terminating. */
const flushDeadlineMs = 1000;

/** The path the WebSocket server answers on. */
export const webSocketPath = '/raft';

/** All-zero masking keys: ws then skips masking and unmasking (see the module comment). */
function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

function urlOf(address: PeerAddress): string {
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `ws://${host}:${address.port}${webSocketPath}`;
}

/** A WebSocket as a FrameChannel. */
export class WsChannel implements FrameChannel {
  readonly closed: Promise<void>;
  private handlers: ChannelHandlers | null = null;
  private reason: string | null = null;
  private halted = false;

  constructor(
    readonly socket: WebSocket,
    readonly remote: string,
    private frameBytesMax: number,
  ) {
    let resolveClosed: () => void = () => undefined;
    this.closed = new Promise((resolve) => (resolveClosed = resolve));
    socket.on('open', () => this.handlers?.onOpen());
    socket.on('message', (data, isBinary) => this.onData(data, isBinary));
    socket.on('error', (error: Error & { code?: string }) => {
      if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        this.framingError(`frame exceeds the ${this.frameBytesMax}-byte bound (${error.message})`);
        return;
      }
      this.reason ??= error.message;
    });
    socket.on('close', (code: number) => {
      this.halted = true;
      resolveClosed();
      this.handlers?.onClose(this.reason ?? `connection closed by the peer (code ${code})`);
    });
  }

  private framingError(reason: string): void {
    if (this.halted) return;
    this.halted = true;
    this.handlers?.onFramingError(reason);
  }

  private onData(data: WebSocket.RawData, isBinary: boolean): void {
    if (this.halted) return;
    if (!isBinary) {
      this.framingError('text message where a binary frame was expected');
      return;
    }
    const frame = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    if (frame.length > this.frameBytesMax) {
      this.framingError(`frame of ${frame.length} bytes exceeds the ${this.frameBytesMax}-byte bound`);
      return;
    }
    this.handlers?.onFrame(frame);
  }

  setHandlers(handlers: ChannelHandlers): void {
    this.handlers = handlers;
  }

  setFrameBytesMax(bytes: number): void {
    this.frameBytesMax = bytes;
  }

  pendingBytes(): number {
    return this.socket.bufferedAmount;
  }

  writeOwned(frame: Uint8Array): void {
    this.socket.send(frame, { binary: true });
  }

  writeFrame(frame: EncodedFrame): WriteOutcome {
    this.socket.send(joinFrame(frame), { binary: true });
    return frame.borrowed ? 'copied' : 'direct';
  }

  close(reason: string): void {
    this.reason ??= reason;
    this.halted = true;
    this.socket.terminate();
  }

  closeAfterFlush(reason: string): void {
    this.reason ??= reason;
    this.halted = true;
    // Close code 1008: policy violation; the reason travels in the close frame too (at most 123 bytes).
    this.socket.close(1008, Buffer.from(reason).subarray(0, 120).toString());
    setTimeout(() => this.socket.terminate(), flushDeadlineMs).unref();
  }
}

/** Options of a WsTransport (see SocketTransportOptions). */
export type WsTransportOptions = SocketTransportOptions;

/** The WebSocket transport. */
export class WsTransport extends SocketTransport {
  readonly kind = 'ws' as const;
  private server: WebSocketServer | null = null;

  constructor(options: WsTransportOptions) {
    super(options);
  }

  protected listenOn(address: PeerAddress, onAccept: (channel: FrameChannel) => void): Promise<PeerAddress> {
    return new Promise((resolve, reject) => {
      const server = new WebSocketServer({
        host: address.host,
        port: address.port,
        path: webSocketPath,
        perMessageDeflate: false,
        maxPayload: this.bounds.frameBytesMax,
        clientTracking: false,
      });
      this.server = server;
      server.on('connection', (socket, request) => {
        const remote = `${request.socket.remoteAddress ?? '?'}:${request.socket.remotePort ?? '?'}`;
        onAccept(new WsChannel(socket, remote, this.bounds.frameBytesMax));
      });
      server.once('error', reject);
      server.once('listening', () => {
        server.off('error', reject);
        server.on('error', (error) => this.logger.error({ node: this.id, error: error.message }, 'websocket server error'));
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
    const socket = new WebSocket(urlOf(address), {
      perMessageDeflate: false,
      generateMask: zeroMask,
      maxPayload: this.bounds.frameBytesMax,
      handshakeTimeout: this.bounds.handshakeTimeoutMs,
    });
    return new WsChannel(socket, `${address.host}:${address.port}`, this.bounds.frameBytesMax);
  }

  protected closeListener(): Promise<void> {
    const server = this.server;
    if (server === null) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }
}
