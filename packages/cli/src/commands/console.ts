/**
 * `raftlab console`: an interactive console on a local KV cluster. It starts N `kv serve` processes
 * on 127.0.0.1 (durable WALs in a temporary directory, admin routes on), then reads commands:
 *
 *   set KEY VALUE            get KEY [linearizable|lease|stale]      del KEY
 *   submit JSON | submit SET|GET|DELETE|CAS KEY [VALUE [EXPECTED]]   (POST /v1/command)
 *   status                   kill N (SIGKILL)   stop N (graceful)   restart N
 *   partition N [PEER...]    heal               transfer N          history   help   quit
 *
 * With a terminal it has a prompt, line editing, history (up/down) and tab completion of commands,
 * node ids and keys; with piped input (scripts, tests) it runs each line in turn and echoes it.
 */
import readline from 'node:readline';
import type { Command } from 'commander';
import { KvClient, KvClientError, LocalCluster, requestJson } from '@raftlab/kv';
import type { FsyncPolicy } from '@raftlab/storage';
import { UsageError, choiceOption, integerOption } from '../usage.js';
import { statusRows } from './kv.js';

/** The console's commands with their help lines. */
export const consoleCommands: readonly (readonly [string, string])[] = [
  ['set KEY VALUE', 'write a value (linearizable, through the leader)'],
  ['get KEY [CONSISTENCY]', 'read a value: linearizable (default), lease or stale'],
  ['del KEY', 'delete a key'],
  ['submit JSON', 'POST a raw command to /v1/command, e.g. submit {"type":"SET","key":"a","value":"1"}'],
  ['submit TYPE KEY [VALUE [EXPECTED]]', 'the same, spelled out: submit SET a 1, submit CAS a 2 1, submit GET a'],
  ['status', 'every node: role, term, leader, commit, applied, partitions'],
  ['kill N', 'kill node N with SIGKILL (a crash)'],
  ['stop N', 'stop node N gracefully (drain, hand leadership over)'],
  ['restart N', 'start node N again, with its WAL'],
  ['partition N [PEER...]', 'cut node N off from PEERs (default: all) at the Raft transport'],
  ['heal', 'end every partition'],
  ['transfer N', 'hand leadership to node N'],
  ['history', 'the commands typed so far'],
  ['help', 'this list'],
  ['quit', 'stop the cluster and leave (also exit, Ctrl-D)'],
];

const commandNames = ['set', 'get', 'del', 'submit', 'status', 'kill', 'stop', 'restart', 'partition', 'heal', 'transfer', 'history', 'help', 'quit', 'exit'];

/** Where the console writes. */
export interface ConsoleOutput {
  write(text: string): void;
}

/** A console session on a running cluster (separate from I/O so scripts and tests can drive it). */
export class ConsoleSession {
  /** Keys written in this session, for completion. */
  readonly keys = new Set<string>();
  readonly history: string[] = [];
  private readonly client: KvClient;

  constructor(
    readonly cluster: LocalCluster,
    private readonly output: ConsoleOutput,
  ) {
    this.client = new KvClient({ endpoints: cluster.endpoints, operationTimeoutMs: 5000, attemptTimeoutMs: 1500 });
  }

  /** Completes the word under the cursor: command names, node ids, keys. */
  complete(line: string): [string[], string] {
    const words = line.split(/\s+/);
    const current = words[words.length - 1] ?? '';
    let candidates: string[];
    if (words.length <= 1) candidates = commandNames;
    else {
      const command = words[0] ?? '';
      const ids = this.cluster.nodes.map((node) => String(node.id));
      if (['kill', 'stop', 'restart', 'transfer', 'partition'].includes(command)) candidates = ids;
      else if (['get', 'set', 'del'].includes(command) && words.length === 2) candidates = [...this.keys];
      else if (command === 'get' && words.length === 3) candidates = ['linearizable', 'lease', 'stale'];
      else if (command === 'submit' && words.length === 2) candidates = ['SET', 'GET', 'DELETE', 'CAS'];
      else candidates = [];
    }
    const hits = candidates.filter((candidate) => candidate.startsWith(current));
    return [hits.length > 0 ? hits : candidates, current];
  }

  /** Runs one line; resolves false when the session should end. */
  async run(line: string): Promise<boolean> {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return true;
    this.history.push(trimmed);
    const [command = '', ...args] = trimmed.split(/\s+/);
    try {
      return await this.dispatch(command.toLowerCase(), args, trimmed);
    } catch (error) {
      const message = error instanceof KvClientError ? `${error.code}: ${error.message}` : error instanceof Error ? error.message : String(error);
      this.print(`error: ${message}`);
      return true;
    }
  }

  /** Stops the client (the caller stops the cluster). */
  close(): void {
    this.client.close();
  }

  private print(text: string): void {
    this.output.write(`${text}\n`);
  }

  private nodeId(value: string | undefined, command: string): number {
    if (value === undefined) throw new UsageError(`${command} needs a node id (1..${this.cluster.nodes.length})`);
    return integerOption(`${command} node id`, value, 1, this.cluster.nodes.length);
  }

  private async dispatch(command: string, args: string[], line: string): Promise<boolean> {
    switch (command) {
      case 'quit':
      case 'exit':
        return false;
      case 'help':
        this.print(consoleCommands.map(([usage, text]) => `  ${usage.padEnd(36)} ${text}`).join('\n'));
        return true;
      case 'history':
        this.print(this.history.map((entry, i) => `${String(i + 1).padStart(4)}  ${entry}`).join('\n'));
        return true;
      case 'set': {
        const [key, ...rest] = args;
        if (key === undefined || rest.length === 0) throw new UsageError('usage: set KEY VALUE');
        const value = rest.join(' ');
        const result = await this.client.put(key, value);
        this.keys.add(key);
        this.print(`OK ${key} = ${JSON.stringify(value)} (index ${result.index}${result.previous === null ? ', new key' : `, was ${JSON.stringify(result.previous)}`})`);
        return true;
      }
      case 'get': {
        const [key, level = 'linearizable'] = args;
        if (key === undefined) throw new UsageError('usage: get KEY [linearizable|lease|stale]');
        const consistency = choiceOption('consistency', level, ['linearizable', 'lease', 'stale'] as const);
        const value = await this.client.get(key, { consistency });
        this.print(value === null ? `${key} not found` : `${key} = ${JSON.stringify(value)}`);
        return true;
      }
      case 'del': {
        const [key] = args;
        if (key === undefined) throw new UsageError('usage: del KEY');
        const result = await this.client.delete(key);
        this.keys.delete(key);
        this.print(result.existed ? `deleted ${key} (index ${result.index})` : `${key} not found: nothing deleted`);
        return true;
      }
      case 'submit':
        return this.submit(args, line);
      case 'status':
        return this.status();
      case 'kill':
      case 'stop': {
        const id = this.nodeId(args[0], command);
        if (!this.cluster.isRunning(id)) throw new UsageError(`node ${id} is not running`);
        if (command === 'kill') await this.cluster.kill(id);
        else await this.cluster.stopNode(id);
        this.print(command === 'kill' ? `killed node ${id} (SIGKILL)` : `stopped node ${id}`);
        return true;
      }
      case 'restart': {
        const id = this.nodeId(args[0], command);
        if (this.cluster.isRunning(id)) throw new UsageError(`node ${id} is running: kill or stop it first`);
        await this.cluster.restart(id);
        this.print(`restarted node ${id}`);
        return true;
      }
      case 'partition': {
        const id = this.nodeId(args[0], command);
        const peers = args.slice(1).map((peer) => this.nodeId(peer, 'partition'));
        if (peers.includes(id)) throw new UsageError(`node ${id} cannot be cut off from itself`);
        await this.cluster.partition(id, peers.length === 0 ? undefined : peers);
        this.print(`node ${id} cut off from ${this.cluster.partitionedFrom(id).join(', ')} (Raft traffic only; HTTP still reaches it)`);
        return true;
      }
      case 'heal':
        await this.cluster.heal();
        this.print('healed: every partition removed');
        return true;
      case 'transfer': {
        const id = this.nodeId(args[0], command);
        await this.cluster.transferLeadership(id);
        this.print(`node ${id} leads`);
        return true;
      }
      default:
        this.print(`unknown command ${JSON.stringify(command)}: type help`);
        return true;
    }
  }

  private async submit(args: string[], line: string): Promise<boolean> {
    let body: unknown;
    const raw = line.slice(line.indexOf(' ') + 1).trim();
    if (raw.startsWith('{')) {
      try {
        body = JSON.parse(raw);
      } catch (error) {
        throw new UsageError(`submit: not JSON: ${error instanceof Error ? error.message : String(error)}`);
      }
    } else {
      const [type, key, value, expected] = args;
      const upper = (type ?? '').toUpperCase();
      if (key === undefined || !['SET', 'GET', 'DELETE', 'CAS'].includes(upper)) throw new UsageError('usage: submit SET|GET|DELETE|CAS KEY [VALUE [EXPECTED]] or submit JSON');
      if ((upper === 'SET' || upper === 'CAS') && value === undefined) throw new UsageError(`submit ${upper} needs a value`);
      body = upper === 'CAS' ? { type: upper, key, value, expected: expected ?? null } : upper === 'SET' ? { type: upper, key, value } : { type: upper, key };
    }
    const leader = await this.cluster.leader();
    const target = leader === 0 ? this.cluster.nodes.find((node) => node.process !== null) : this.cluster.node(leader);
    if (target === undefined) throw new Error('no node is running');
    const answer = await requestJson(`${target.url}/v1/command`, { method: 'POST', body, timeoutMs: 5000 });
    if (answer === null) throw new Error(`node ${target.id} did not answer`);
    if (typeof body === 'object' && body !== null && typeof (body as { key?: unknown }).key === 'string') this.keys.add((body as { key: string }).key);
    this.print(`${answer.status} ${JSON.stringify(answer.body)}`);
    return true;
  }

  private async status(): Promise<boolean> {
    const statuses = await Promise.all(
      this.cluster.nodes.map(async (node) => ({
        endpoint: `node ${node.id} ${node.url}`,
        status: node.process === null ? null : await this.cluster.status(node.id),
        error: node.process === null ? 'down' : 'not answering',
      })),
    );
    this.print(statusRows(statuses));
    return true;
  }
}

/** Options of `raftlab console`. */
interface ConsoleOptions {
  readonly nodes: string;
  readonly transport: string;
  readonly fsync: string;
  readonly memory?: boolean;
}

/** Runs the console on stdin/stdout until quit or end of input. */
async function runConsole(options: ConsoleOptions): Promise<void> {
  const nodes = integerOption('--nodes', options.nodes, 1, 9);
  const transport = choiceOption('--transport', options.transport, ['tcp', 'ws'] as const);
  const fsync = choiceOption<FsyncPolicy>('--fsync', options.fsync, ['always', 'batch', 'none']);
  const interactive = process.stdin.isTTY === true;
  const output: ConsoleOutput = { write: (text) => process.stdout.write(text) };
  output.write(`starting ${nodes} nodes (${transport}${options.memory === true ? ', memory storage' : `, WAL fsync ${fsync}`})...\n`);
  const cluster = await LocalCluster.start({ nodes, transport, durable: options.memory !== true, fsync });
  const session = new ConsoleSession(cluster, output);
  output.write(`cluster up: ${cluster.nodes.map((node) => `node ${node.id} ${node.url}`).join(', ')}; leader is node ${await cluster.leader()}. Type help.\n`);
  const lines = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: interactive,
    historySize: 500,
    prompt: 'raftlab> ',
    completer: (line: string) => session.complete(line),
  });
  let closing = false;
  const stop = async (): Promise<void> => {
    if (closing) return;
    closing = true;
    session.close();
    lines.close();
    output.write('stopping the cluster...\n');
    await cluster.stop();
  };
  lines.on('SIGINT', () => {
    void stop();
  });
  try {
    if (interactive) lines.prompt();
    for await (const line of lines) {
      if (!interactive) output.write(`raftlab> ${line}\n`);
      const keepGoing = await session.run(line);
      if (!keepGoing || closing) break;
      if (interactive) lines.prompt();
    }
  } finally {
    await stop();
  }
}

/** Registers `raftlab console`. */
export function register(program: Command): void {
  program
    .command('console')
    .description('an interactive console on a local KV cluster (set, get, kill, restart, partition, heal, transfer...)')
    .option('--nodes <n>', 'nodes in the local cluster', '3')
    .option('--transport <kind>', 'tcp or ws', 'tcp')
    .option('--fsync <policy>', 'WAL fsync policy: always, batch or none', 'always')
    .option('--memory', 'memory storage instead of the WAL (a killed node loses its state: kill with care)')
    .action(async (options: ConsoleOptions) => {
      await runConsole(options);
    });
}
