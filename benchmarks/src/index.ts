/**
 * Bench lab: the orchestrator behind `pnpm bench` / `pnpm bench:quick` (lab/main.ts), its plans
 * (lab/options.ts) and the results schema every suite writes (results.ts).
 */
export { runLab } from './lab/main.js';
export { type LabOptions, type LabPlan, type LabSuite, type LabTransport, labPlan, labSuites, parseLabArguments } from './lab/options.js';
export * from './results.js';
