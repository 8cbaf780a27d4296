/**
 * @raftlab/transport: one Transport interface (transport.ts) and three implementations: memory
 * (in process, zero-copy on request), TCP (node:net) and WebSocket (ws), sharing one wire codec
 * (codec.ts) and one authenticated handshake (handshake.ts).
 *
 *   const transport = new TcpTransport({ id: 1, clusterId: 'prod', secret, listen: { host: '0.0.0.0', port: 7001 },
 *                                        peers: new Map([[2, { host: 'b', port: 7001 }], [3, { host: 'c', port: 7001 }]]) });
 *   transport.onMessage((message) => inbox.push(message));
 *   await transport.start();
 *   transport.send(message);
 */
export {
  type DecodeExpectation,
  type DecodeResult,
  type EncodedFrame,
  HeaderReader,
  checkFraming,
  decodeMessage,
  encodeMessage,
  frameHeadBytes,
  frameOverheadBytes,
  framePrefixBytes,
  frameStatus,
  joinFrame,
  messageTypeCode,
} from './codec.js';
export { type FrameChannel, SocketTransport, type SocketTransportOptions, type WriteOutcome } from './connection.js';
export { AcceptorHandshake, DialerHandshake, type HandshakeIdentity, type HandshakeStep, handshakeBytesMax, protocolVersion } from './handshake.js';
export { type MemoryFilter, type MemoryHandover, MemoryNetwork, MemoryTransport, type MemoryTransportOptions, type MemoryVerdict, copyMessage } from './memory.js';
export { FrameSplitter, TcpTransport, type TcpTransportOptions } from './tcp.js';
export {
  type Direction,
  type Logger,
  type PeerAddress,
  type Transport,
  type TransportBounds,
  TransportError,
  type TransportErrorCode,
  type TransportEvent,
  type TransportStats,
  defaultTransportBounds,
  silentLogger,
} from './transport.js';
export { WsTransport, type WsTransportOptions, webSocketPath } from './ws.js';
