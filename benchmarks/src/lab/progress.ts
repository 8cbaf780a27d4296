/**
 * Progress of a bench run on stderr (stdout stays free for the summary): a bar redrawn in place on
 * a terminal, one line per step otherwise (CI logs, pipes), so a long sweep never looks hung.
 */

/** Width of the bar in characters. */
const barWidth = 28;

/** The text of one progress line: bar, steps done of planned, elapsed time, what runs now. */
export function renderProgress(done: number, total: number, elapsedMs: number, label: string): string {
  const bounded = Math.max(0, Math.min(done, total));
  const filled = total === 0 ? barWidth : Math.round((bounded / total) * barWidth);
  const seconds = Math.floor(elapsedMs / 1000);
  const clock = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
  return `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${bounded}/${total} ${clock} ${label}`;
}

/** Where progress goes: a terminal-like stream, or nothing. */
export interface ProgressSink {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
}

/** A bar over a planned number of steps. */
export class Progress {
  private done = 0;
  private readonly startedAt = performance.now();
  private lastLength = 0;

  constructor(
    private total: number,
    private readonly sink: ProgressSink | null,
  ) {}

  /** Plans more steps (a suite that learns its size late). */
  addSteps(count: number): void {
    this.total += count;
  }

  /** Shows what runs now, without counting a step. */
  show(label: string): void {
    this.draw(label, false);
  }

  /** Counts one step as done. */
  step(label: string): void {
    this.done += 1;
    this.draw(label, true);
  }

  /** A message above the bar (a warning, a skipped suite). */
  log(line: string): void {
    if (this.sink === null) return;
    if (this.sink.isTTY === true) this.sink.write(`\r${' '.repeat(this.lastLength)}\r`);
    this.sink.write(`${line}\n`);
    this.lastLength = 0;
  }

  /** Ends the bar's line. */
  finish(label: string): void {
    this.done = this.total;
    this.draw(label, true);
    if (this.sink?.isTTY === true) this.sink.write('\n');
  }

  private draw(label: string, counted: boolean): void {
    if (this.sink === null) return;
    let line = renderProgress(this.done, this.total, performance.now() - this.startedAt, label);
    if (this.sink.isTTY === true) {
      // A pseudo-terminal may report 0 columns: then assume a common width.
      const columns = this.sink.columns !== undefined && this.sink.columns >= 20 ? this.sink.columns : 100;
      if (line.length > columns - 1) line = line.slice(0, columns - 1);
      this.sink.write(`\r${line.padEnd(this.lastLength)}`);
      this.lastLength = line.length;
    } else if (counted) {
      this.sink.write(`${line}\n`);
    }
  }
}
