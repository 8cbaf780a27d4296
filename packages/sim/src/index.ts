/** @raftlab/sim: deterministic fault simulator, safety and liveness checkers, and simulate(). */
export { SafetyChecker, SafetyViolation, type RunClock, type ViolationKind } from './checker.js';
export { type ClusterOptions, type ClusterStats, type CommandSource, type PlantedBugName, SimCluster, SimNode, type TraceSink, asViolation, plantedBugNames } from './cluster.js';
export { hashBytes, hashNumber, hashString } from './hash.js';
export { type ClientReply, type ClientRequest, type Envelope, type NetworkStats, SimNetwork, deliveriesPerTickMax } from './network.js';
export * from './profile.js';
export * from './run.js';
export * from './simulate.js';
export * from './summary.js';
export { type SeedBatch, runSeeds } from './pool.js';
