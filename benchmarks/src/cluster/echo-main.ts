/**
 * The echo process of the loopback round-trip probe (process-cluster.ts): a TCP server on
 * 127.0.0.1 that writes back every chunk it reads, with TCP_NODELAY. It reports its port over IPC
 * and exits when the driver disconnects. A round trip through it is the least a commit can cost
 * (leader -> follower -> leader), measured in the same run as the cluster.
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
