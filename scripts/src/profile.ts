/**
 * Flamegraph sessions (`pnpm profile <scenario> [--tool clinic|0x]`).
 *
 *   node scripts/dist/profile.js <scenario> [--tool clinic|0x] [--out results/profiles] [--keep-data] [--list]
 *
 * Runs a scenario of benchmarks/src/profile-scenarios.ts under `clinic flame` (default) or `0x`
 * and copies the flamegraph to results/profiles/<scenario>.html (clinic) or
 * results/profiles/<scenario>.0x.html (0x). Works without a terminal: clinic is run with
 * NO_INSIGHT=1 (without it, clinic waits on a prompt and silently writes nothing when stdin is not
 * a terminal) and --open=false. scripts/README.md says how to read the result.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { type ProfileScenario, profileScenarios } from '@raftlab/benchmarks/dist/profile-scenarios.js';

import { formatBytes } from './format.js';
import { repositoryRoot, resultsDirectory } from './paths.js';

/** The profilers this script drives. */
export type ProfileTool = 'clinic' | '0x';

/** How long a profiling session may take (scenario plus analysis) before it is interrupted. */
const sessionTimeoutMs = 10 * 60_000;

/** Parsed command line. */
interface ProfileArguments {
  readonly scenario: string | null;
  readonly tool: ProfileTool;
  readonly outDir: string;
  readonly keepData: boolean;
  readonly list: boolean;
}

/** A usage or environment problem, reported without a stack. */
class ProfileError extends Error {
  readonly code = 'profile-failed' as const;
}

const usage = 'usage: node scripts/dist/profile.js <scenario> [--tool clinic|0x] [--out DIR] [--keep-data] [--list]';

function parseArguments(argv: readonly string[]): ProfileArguments {
  let scenario: string | null = null;
  let tool: ProfileTool = 'clinic';
  let outDir = path.join(resultsDirectory, 'profiles');
  let keepData = false;
  let list = false;
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i] as string;
    if (argument === '--tool') {
      const value = argv[++i];
      if (value !== 'clinic' && value !== '0x') throw new ProfileError(`--tool expects clinic or 0x, got ${value ?? 'nothing'}\n${usage}`);
      tool = value;
    } else if (argument === '--out') {
      const value = argv[++i];
      if (value === undefined) throw new ProfileError(`--out needs a directory\n${usage}`);
      outDir = path.resolve(value);
    } else if (argument === '--keep-data') {
      keepData = true;
    } else if (argument === '--list') {
      list = true;
    } else if (argument === '--') {
      continue;
    } else if (argument === '--help' || argument === '-h') {
      process.stdout.write(`${usage}\n`);
      process.exit(0);
    } else if (argument.startsWith('--')) {
      throw new ProfileError(`unknown option ${argument}\n${usage}`);
    } else if (scenario === null) {
      scenario = argument;
    } else {
      throw new ProfileError(`one scenario at a time, got ${scenario} and ${argument}\n${usage}`);
    }
  }
  return { scenario, tool, outDir, keepData, list };
}

/** The executable script of a dev dependency's bin (clinic/bin.js, 0x/cmd.js). */
function binOf(tool: ProfileTool): string {
  const require = createRequire(import.meta.url);
  const [name, relative] = tool === 'clinic' ? ['clinic', 'bin.js'] : ['0x', 'cmd.js'];
  try {
    return path.join(path.dirname(require.resolve(`${name}/package.json`)), relative);
  } catch {
    throw new ProfileError(`${name} is not installed: it is a devDependency of @raftlab/scripts; run npx pnpm@10 install`);
  }
}

/** Runs a command with no stdin, echoing its output; resolves with its exit code. */
function run(command: string, args: readonly string[], environment: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: environment, stdio: ['ignore', 'inherit', 'inherit'] });
    // On timeout, SIGINT first: both profilers stop the program and still write what they have.
    const timer = setTimeout(() => child.kill('SIGINT'), sessionTimeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new ProfileError(`could not start ${command}: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? (signal === null ? 1 : 128));
    });
  });
}

function findFile(directory: string, matches: (name: string) => boolean): string | null {
  if (!existsSync(directory)) return null;
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const full = path.join(directory, entry.name);
    if (entry.isFile() && matches(entry.name)) return full;
    if (entry.isDirectory()) {
      const found = findFile(full, matches);
      if (found !== null) return found;
    }
  }
  return null;
}

/** Where a session left its flamegraph. */
export interface ProfileResult {
  readonly htmlPath: string;
  readonly bytes: number;
  readonly dataDir: string | null;
}

/** Profiles `scenario` with `tool` and copies the flamegraph HTML into `outDir`. */
export async function profileScenario(scenario: ProfileScenario, tool: ProfileTool, outDir: string, keepData: boolean): Promise<ProfileResult> {
  if (!existsSync(scenario.script)) throw new ProfileError(`${scenario.name}: ${scenario.script} does not exist; build first (npx tsc -b tsconfig.build.json)`);
  const work = mkdtempSync(path.join(os.tmpdir(), `raftlab-profile-${scenario.name}-`));
  const environment: NodeJS.ProcessEnv = { ...process.env, NO_INSIGHT: '1' };
  const program = [process.execPath, scenario.script, ...scenario.args];
  let code: number;
  let html: string | null;
  if (tool === 'clinic') {
    code = await run(process.execPath, [binOf('clinic'), 'flame', '--open=false', '--dest', work, '--', ...program], environment, work);
    html = findFile(work, (name) => name.endsWith('.clinic-flame.html'));
  } else {
    const outputDir = path.join(work, 'flamegraph');
    code = await run(process.execPath, [binOf('0x'), '--output-dir', outputDir, '--', ...program], environment, work);
    html = findFile(outputDir, (name) => name === 'flamegraph.html');
  }
  if (html === null || statSync(html).size === 0) {
    throw new ProfileError(`${tool} exited ${code} and wrote no flamegraph for ${scenario.name} (data left in ${work})`);
  }
  mkdirSync(outDir, { recursive: true });
  const htmlPath = path.join(outDir, `${scenario.name}${tool === 'clinic' ? '' : '.0x'}.html`);
  copyFileSync(html, htmlPath);
  let dataDir: string | null = null;
  if (keepData) {
    dataDir = work;
  } else {
    rmSync(work, { recursive: true, force: true });
  }
  return { htmlPath, bytes: statSync(htmlPath).size, dataDir };
}

async function main(): Promise<void> {
  const options = parseArguments(process.argv.slice(2));
  if (options.list || options.scenario === null) {
    process.stdout.write(`${options.scenario === null && !options.list ? `${usage}\n\n` : ''}scenarios:\n`);
    for (const s of profileScenarios) process.stdout.write(`  ${s.name.padEnd(12)} ${s.description}\n`);
    if (options.scenario === null && !options.list) process.exitCode = 2;
    return;
  }
  const scenario = profileScenarios.find((s) => s.name === options.scenario);
  if (scenario === undefined) {
    throw new ProfileError(`no scenario named ${options.scenario}; known: ${profileScenarios.map((s) => s.name).join(', ')} (add one in benchmarks/src/profile-scenarios.ts)`);
  }
  process.stdout.write(`profile: ${scenario.name} under ${options.tool}: ${path.relative(repositoryRoot, scenario.script)} ${scenario.args.join(' ')}\n`);
  const result = await profileScenario(scenario, options.tool, options.outDir, options.keepData);
  process.stdout.write(`profile: ${result.htmlPath} (${formatBytes(result.bytes)})\n`);
  if (result.dataDir !== null) process.stdout.write(`profile: raw data kept in ${result.dataDir}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`profile: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
