/**
 * The echo process of the latency floor probes (process-cluster.ts): a TCP server on 127.0.0.1
 * that writes back every chunk it reads, with TCP_NODELAY. It reports its port over IPC and exits
 * when the driver disconnects. The round-trip probe forks one (leader -> follower -> leader); the
 * fan-out probe forks two and writes to both, as a leader of three nodes does, because a commit
 * waits for the first of two followers, not for one follower alone. Both run in the same run as
 * the cluster.
 */
import { createServer } from 'node:net';

if (process.send === undefined) throw new Error('echo-main runs under the process-cluster driver (an IPC channel is required)');
const server = createServer({ noDelay: true }, (socket) => {
  socket.on('data', (chunk: Buffer) => socket.write(chunk));
  socket.on('error', () => socket.destroy());
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 });
});
process.on('disconnect', () => process.exit(0));
