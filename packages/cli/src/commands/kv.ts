/**
 * `raftlab kv`: the KV service from the command line.
 *
 *   raftlab kv serve --id 1 --peers 1=127.0.0.1:7001,... --http 127.0.0.1:8081 [...]   run a node
 *   raftlab kv set KEY VALUE        raftlab kv get KEY [--consistency lease|stale]
 *   raftlab kv del KEY              raftlab kv cas KEY VALUE (--expected OLD | --absent)
 *   raftlab kv status               raftlab kv bench [--op put|get|both] [--connections 1,64,256]
 *
 * The client commands take --endpoints (default $RAFTLAB_ENDPOINTS, else http://127.0.0.1:8081),
 * find the leader themselves and retry within --timeout-ms. A missing key, a failed cas or an
 * unreachable cluster exit with 1; bad usage with 2.
 */
import type { Command } from 'commander';
import { KvClient, KvClientError, type LoadResult, type StatusResponse, runLoad, runServeProcess, serveUsage } from '@raftlab/kv';
import { UsageError, choiceOption, integerOption } from '../usage.js';

/** Options every client command takes. */
interface ClientOptions {
  readonly endpoints?: string;
  readonly timeoutMs?: string;
  readonly json?: boolean;
}

/** The default endpoint list: $RAFTLAB_ENDPOINTS or the first node of a local cluster. */
function defaultEndpoints(): string {
  return process.env['RAFTLAB_ENDPOINTS'] ?? 'http://127.0.0.1:8081';
}

/** Parses --endpoints: comma-separated http:// URLs. */
export function endpointsOption(value: string): string[] {
  const endpoints = value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  if (endpoints.length === 0) throw new UsageError('--endpoints expects at least one URL');
  for (const endpoint of endpoints) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new UsageError(`--endpoints: ${JSON.stringify(endpoint)} is not a URL (expected http://host:port)`);
    }
    if (url.protocol !== 'http:') throw new UsageError(`--endpoints: ${endpoint} is not an http:// URL`);
  }
  return endpoints;
}

function clientOf(options: ClientOptions): KvClient {
  const timeoutMs = integerOption('--timeout-ms', options.timeoutMs ?? '5000', 1, 3_600_000);
  return new KvClient({ endpoints: endpointsOption(options.endpoints ?? defaultEndpoints()), operationTimeoutMs: timeoutMs, attemptTimeoutMs: Math.min(timeoutMs, 2000) });
}

function withClientOptions(command: Command): Command {
  return command
    .option('--endpoints <urls>', 'comma-separated node URLs (default $RAFTLAB_ENDPOINTS or http://127.0.0.1:8081)')
    .option('--timeout-ms <ms>', 'deadline of the operation, retries included', '5000')
    .option('--json', 'print the result as JSON');
}

/** Runs a client command: prints, sets the exit code, always closes the client. */
async function withClient(options: ClientOptions, run: (client: KvClient) => Promise<void>): Promise<void> {
  const client = clientOf(options);
  try {
    await run(client);
  } catch (error) {
    if (!(error instanceof KvClientError)) throw error;
    const note = error.indeterminate ? ' (the write may or may not have been applied)' : '';
    throw new Error(`${error.code}: ${error.message}${note}`);
  } finally {
    client.close();
  }
}

function print(options: ClientOptions, json: unknown, text: string): void {
  console.log(options.json === true ? JSON.stringify(json) : text);
}

/** A table with left-aligned columns. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => cell.padEnd(widths[column] as number))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** One row per endpoint of `kv status`. */
export function statusRows(statuses: readonly { endpoint: string; status: StatusResponse | null; error?: string }[]): string {
  return formatTable(
    ['endpoint', 'id', 'role', 'term', 'leader', 'commit', 'applied', 'last', 'keys', 'cut off from'],
    statuses.map(({ endpoint, status, error }) =>
      status === null
        ? [endpoint, '-', error ?? 'unreachable']
        : [
            endpoint,
            String(status.id),
            status.role,
            String(status.term),
            status.leader === 0 ? 'none' : String(status.leader),
            String(status.commit),
            String(status.applied),
            String(status.lastIndex),
            String(status.keys),
            status.partitionedFrom.length === 0 ? '-' : status.partitionedFrom.join(','),
          ],
    ),
  );
}

/** `raftlab kv bench` figures as a table. */
export function benchTable(rows: readonly { op: string; connections: number; result: LoadResult }[]): string {
  const micros = (value: number): string => (Number.isFinite(value) ? value.toFixed(0) : '-');
  return formatTable(
    ['op', 'connections', 'requests/s', 'p50 µs', 'p90 µs', 'p99 µs', 'max µs', 'ok', 'non-2xx', 'errors'],
    rows.map(({ op, connections, result }) => [
      op,
      String(connections),
      result.throughputPerSecond.toFixed(0),
      micros(result.latencyMicros.p50),
      micros(result.latencyMicros.p90),
      micros(result.latencyMicros.p99),
      micros(result.latencyMicros.max),
      String(result.ok),
      String(result.non2xx),
      String(result.errors),
    ]),
  );
}

/** Registers `raftlab kv` and its subcommands. */
export function register(program: Command): void {
  const kv = program.command('kv').description('the strongly consistent KV service: run a node, read and write, benchmark');

  kv.command('serve')
    .description('run one KV node (raftlab kv serve --help for its options)')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[arguments...]', 'node options: see raftlab kv serve --help')
    .addHelpText('after', `\n${serveUsage}`)
    .action(async (args: string[]) => {
      const code = await runServeProcess(args);
      process.exitCode = code;
      // Leave once the logger has flushed, even if a socket lingers.
      setTimeout(() => process.exit(code), 50).unref();
    });

  withClientOptions(kv.command('set').description('set KEY to VALUE').argument('<key>').argument('<value>')).action(async (key: string, value: string, options: ClientOptions) => {
    await withClient(options, async (client) => {
      const result = await client.put(key, value);
      print(options, result, `OK (index ${result.index}${result.previous === null ? ', new key' : `, replaced ${JSON.stringify(result.previous)}`})`);
    });
  });

  withClientOptions(kv.command('get').description('print the value of KEY').argument('<key>'))
    .option('--consistency <level>', 'linearizable (default), lease or stale')
    .action(async (key: string, options: ClientOptions & { consistency?: string }) => {
      const consistency = choiceOption('--consistency', options.consistency ?? 'linearizable', ['linearizable', 'lease', 'stale'] as const);
      await withClient(options, async (client) => {
        const value = await client.get(key, { consistency });
        if (value === null) {
          if (options.json === true) console.log(JSON.stringify({ key, value: null }));
          else console.error(`raftlab: key ${JSON.stringify(key)} not found`);
          process.exitCode = 1;
          return;
        }
        print(options, { key, value }, value);
      });
    });

  withClientOptions(kv.command('del').alias('delete').description('delete KEY').argument('<key>')).action(async (key: string, options: ClientOptions) => {
    await withClient(options, async (client) => {
      const result = await client.delete(key);
      print(options, result, result.existed ? `deleted (index ${result.index})` : 'not found: nothing to delete');
    });
  });

  withClientOptions(kv.command('cas').description('set KEY to VALUE only if it holds --expected (or is absent with --absent)').argument('<key>').argument('<value>'))
    .option('--expected <old>', 'the value KEY must hold')
    .option('--absent', 'KEY must not exist')
    .action(async (key: string, value: string, options: ClientOptions & { expected?: string; absent?: boolean }) => {
      if ((options.expected === undefined) === (options.absent !== true)) throw new UsageError('cas needs exactly one of --expected OLD and --absent');
      await withClient(options, async (client) => {
        const result = await client.cas(key, options.absent === true ? null : (options.expected as string), value);
        if (result.ok) {
          print(options, result, `OK (index ${result.index})`);
          return;
        }
        print(options, result, `cas failed: ${key} holds ${result.actual === null ? 'nothing (absent)' : JSON.stringify(result.actual)}`);
        process.exitCode = 1;
      });
    });

  withClientOptions(kv.command('status').description('show every endpoint: role, term, leader, commit, applied')).action(async (options: ClientOptions) => {
    await withClient(options, async (client) => {
      const endpoints = endpointsOption(options.endpoints ?? defaultEndpoints());
      const statuses = await Promise.all(
        endpoints.map(async (endpoint) => {
          try {
            return { endpoint, status: await client.status(endpoint) };
          } catch (error) {
            return { endpoint, status: null, error: error instanceof Error ? `unreachable: ${error.message}` : 'unreachable' };
          }
        }),
      );
      print(options, statuses, statusRows(statuses));
      if (statuses.every(({ status }) => status === null)) process.exitCode = 1;
    });
  });

  withClientOptions(kv.command('bench').description('load a cluster with autocannon: puts and gets, latency in microseconds'))
    .option('--op <op>', 'put, get or both', 'both')
    .option('--connections <list>', 'comma-separated connection counts', '1,64,256')
    .option('--duration <seconds>', 'seconds per run', '10')
    .option('--value-bytes <n>', 'size of the value written', '16')
    .option('--consistency <level>', 'read consistency of the gets', 'linearizable')
    .action(async (options: ClientOptions & { op: string; connections: string; duration: string; valueBytes: string; consistency: string }) => {
      const op = choiceOption('--op', options.op, ['put', 'get', 'both'] as const);
      const consistency = choiceOption('--consistency', options.consistency, ['linearizable', 'lease', 'stale'] as const);
      const connections = options.connections.split(',').map((part) => integerOption('--connections', part.trim(), 1, 10_000));
      const durationSeconds = integerOption('--duration', options.duration, 1, 3600);
      const value = 'v'.repeat(integerOption('--value-bytes', options.valueBytes, 0, 1024 * 1024));
      await withClient(options, async (client) => {
        // Find the leader (the client does), then aim the load at it directly.
        await client.put('bench', value);
        const endpoints = endpointsOption(options.endpoints ?? defaultEndpoints());
        const statuses = await Promise.all(endpoints.map((endpoint) => client.status(endpoint).catch(() => null)));
        const leader = statuses.find((status) => status?.role === 'leader');
        const target = leader === undefined ? (endpoints[0] as string) : (endpoints[statuses.indexOf(leader)] as string);
        const rows: { op: string; connections: number; result: LoadResult }[] = [];
        for (const count of connections) {
          if (op !== 'get') rows.push({ op: 'put', connections: count, result: await runLoad({ url: `${target}/v1/kv/bench`, method: 'PUT', body: value, headers: { 'content-type': 'text/plain' }, connections: count, durationSeconds }) });
          if (op !== 'put') {
            const query = consistency === 'linearizable' ? '' : `?consistency=${consistency}`;
            rows.push({ op: `get${query === '' ? '' : ` (${consistency})`}`, connections: count, result: await runLoad({ url: `${target}/v1/kv/bench${query}`, method: 'GET', connections: count, durationSeconds }) });
          }
        }
        print(
          options,
          rows.map(({ op: name, connections: count, result }) => ({ op: name, connections: count, throughputPerSecond: result.throughputPerSecond, latencyMicros: result.latencyMicros, ok: result.ok, non2xx: result.non2xx, errors: result.errors })),
          `target ${target}\n${benchTable(rows)}`,
        );
      });
    });
}
