/** Strongly consistent KV service: state machine, HTTP API, client, linearizability checker. */
export {
  type CommandRefusal,
  type DecodeResult,
  type EncodeResult,
  type KvCommand,
  type KvLimits,
  type KvWriteCommand,
  type SessionStamp,
  commandOpcode,
  commandVersion,
  decodeCommand,
  defaultKvLimits,
  encodeCommand,
} from './command.js';
export { KvError, type KvErrorCode } from './errors.js';
export {
  type KvMachineConfig,
  type KvMachineStats,
  type KvRefusal,
  type KvRefused,
  type KvResult,
  type KvWriteResult,
  type ReplicatedStateMachine,
  type ResolvedKvMachineConfig,
  KvMachine,
  defaultKvMachineConfig,
  resolveKvMachineConfig,
  snapshotVersion,
} from './machine.js';
export {
  type CheckOptions,
  type CheckResult,
  type HistoryOperation,
  type HistoryTime,
  type LinearizabilityViolation,
  type OperationReport,
  type RegisterInput,
  type RegisterOutput,
  checkLinearizability,
  describeOperation,
} from './linearizability.js';
export { type GeneratedHistory, type HistoryShape, generateHistory } from './history.js';
export {
  type CasResponse,
  type DeleteResponse,
  type ErrorBody,
  type GetResponse,
  KvApiError,
  type KvApiErrorCode,
  type PeerStatus,
  type PutResponse,
  type SessionResponse,
  type StatusResponse,
  clientIdHeader,
  errorStatus,
  forwardedHeader,
  lowestPendingHeader,
  nodeHeader,
  readConsistencies,
  sequenceHeader,
} from './api.js';
export { type CasResult, type ClientReadConsistency, KvClient, KvClientError, type KvClientErrorCode, type KvClientOptions } from './client.js';
export { KvMetrics, type TransportByteStats, requestDurationBucketsSeconds } from './metrics.js';
export { type KvNodeOptions, startKvNode } from './node.js';
export { type FollowerMode, type KvPlantedBug, KvServer, type KvServerOptions, kvPlantedBugs } from './server.js';
export { type AppliedKvResult, IndexedKvMachine, type KvRuntime, KvService, type KvServiceOptions, type KvWriteOutcome, type KvWriteRequest, apiErrorOf } from './service.js';
export { type JepsenCounts, type JepsenOptions, type JepsenResult, type NemesisEvent, type NemesisFault, describeJepsen, runJepsen } from './jepsen.js';
export { LocalCluster, type LocalClusterOptions, type LocalNode, freePort, requestJson, serveMainPath } from './launcher.js';
export { type KvServeOptions, type ServingNode, developmentSecret, parseServeArguments, runServeProcess, serve, serveUsage } from './serve.js';
export { type LatencyMicros, type LoadOptions, type LoadResult, quantile, runLoad } from './load.js';
