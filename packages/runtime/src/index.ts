/**
 * @raftlab/runtime: drives one RaftNode in real time (timers -> tick, transport -> step, Ready
 * loop -> storage, send, apply), with proposal batching, linearizable reads and leadership transfer.
 */
export { RuntimeError, type RuntimeErrorCode } from './errors.js';
export { type Logger, createLogger, silentLogger } from './logger.js';
export {
  type CompactionPolicy,
  RaftRuntime,
  type ReadConsistency,
  type RuntimeCounters,
  type RuntimeEvents,
  type RuntimeOptions,
  type RuntimeStatus,
  type RuntimeTransport,
} from './runtime.js';
export { CounterMachine, type StateMachine, SumStateMachine, type SumResult } from './state-machine.js';
