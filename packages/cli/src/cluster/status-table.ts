/**
 * The live status table of `raftlab cluster up`: one row per node (id, role, term, leader, commit,
 * applied...), redrawn in place on a terminal, printed as plain blocks when it changed otherwise, or
 * as one JSON object per refresh for scripts.
 */
import type { NodeId } from '@raftlab/core';
import { formatTable } from '../commands/kv.js';
import type { MachineState, NodeReport } from './control.js';

/** One refresh: every node's report (null: down or not answering). */
export interface ClusterSnapshot {
  readonly time: string;
  readonly transport: string;
  readonly ids: readonly NodeId[];
  readonly reports: readonly (NodeReport | null)[];
}

/** The leader every answering node agrees on, 0 when there is none (yet). */
export function agreedLeader(snapshot: ClusterSnapshot): NodeId {
  const up = snapshot.reports.filter((report): report is NodeReport => report !== null);
  const leaders = up.filter((report) => report.role === 'leader');
  if (leaders.length !== 1) return 0;
  const leader = leaders[0] as NodeReport;
  return up.every((report) => report.leader === leader.id) ? leader.id : 0;
}

function machineText(machine: MachineState): string {
  return machine.kind === 'sum' ? `sum ${machine.value}` : `count ${machine.count}`;
}

/** The table as text (no trailing newline). */
export function formatSnapshot(snapshot: ClusterSnapshot): string {
  const leader = agreedLeader(snapshot);
  const up = snapshot.reports.filter((report) => report !== null).length;
  const title = `cluster: ${snapshot.ids.length} nodes over ${snapshot.transport}, ${up} up, leader ${leader === 0 ? 'none' : leader}  ${snapshot.time}`;
  const rows = snapshot.ids.map((id, index) => {
    const report = snapshot.reports[index] ?? null;
    if (report === null) return [String(id), '-', 'down'];
    return [
      String(id),
      String(report.pid),
      report.role,
      String(report.term),
      report.leader === 0 ? 'none' : String(report.leader),
      String(report.commit),
      String(report.applied),
      String(report.lastIndex),
      machineText(report.machine),
      report.partitionedFrom.length === 0 ? '-' : report.partitionedFrom.join(','),
    ];
  });
  return `${title}\n${formatTable(['id', 'pid', 'role', 'term', 'leader', 'commit', 'applied', 'last', 'state', 'cut off from'], rows)}`;
}

/** What identifies a change worth a new block on a non-terminal (the time excluded). */
function fingerprint(snapshot: ClusterSnapshot): string {
  return JSON.stringify(snapshot.reports.map((report) => (report === null ? null : [report.role, report.term, report.leader, report.commit, report.applied, report.partitionedFrom])));
}

/** How often a non-terminal gets an unchanged table again, so a log shows the cluster is alive. */
const unchangedRepeatMs = 10_000;

/** Draws snapshots: in place on a terminal, as blocks when changed otherwise, or as JSON lines. */
export class StatusRenderer {
  private drawnLines = 0;
  private lastFingerprint = '';
  private lastPrintedAt = 0;

  constructor(
    private readonly write: (text: string) => void,
    private readonly mode: 'tty' | 'plain' | 'json',
  ) {}

  /** Draws one refresh. */
  render(snapshot: ClusterSnapshot, now = Date.now()): void {
    if (this.mode === 'json') {
      this.write(`${JSON.stringify({ ...snapshot, leader: agreedLeader(snapshot) })}\n`);
      return;
    }
    const text = formatSnapshot(snapshot);
    if (this.mode === 'tty') {
      // Move up over the previous table and clear to the end of the screen, then draw.
      const up = this.drawnLines > 0 ? `\x1b[${this.drawnLines}F\x1b[0J` : '';
      this.write(`${up}${text}\n`);
      this.drawnLines = text.split('\n').length;
      return;
    }
    const print = fingerprint(snapshot);
    if (print === this.lastFingerprint && now - this.lastPrintedAt < unchangedRepeatMs) return;
    this.lastFingerprint = print;
    this.lastPrintedAt = now;
    this.write(`${text}\n\n`);
  }
}
