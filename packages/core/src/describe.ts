/**
 * Stable one-line descriptions of messages and Ready, for tests, traces and logs. The format is
 * part of the API: tests compare against it, so change it only on purpose.
 */
import { unreachable } from './assert.js';
import type { EntryFrames } from './entry.js';
import type { Message } from './message.js';
import type { Ready } from './ready.js';

function describeEntries(entries: EntryFrames): string {
  return entries.count === 0 ? 'entries=0' : `entries=${entries.count}(${entries.byteLength}B)`;
}

function describeContext(context: string | null): string {
  return context === null ? '' : ` ctx=${JSON.stringify(context)}`;
}

/** One line per message, e.g. `append 1->2 t3 prev=5/2 commit=4 entries=3(57B)`. */
export function describeMessage(m: Message): string {
  const head = `${m.type} ${m.from}->${m.to} t${m.term}`;
  switch (m.type) {
    case 'append':
      return `${head} prev=${m.prevIndex}/${m.prevTerm} commit=${m.commit} ${describeEntries(m.entries)}`;
    case 'appendResponse':
      return m.reject
        ? `${head} reject index=${m.index} hint=${m.hintIndex}/${m.hintTerm}`
        : `${head} accept index=${m.index}`;
    case 'vote':
    case 'preVote':
      return `${head} last=${m.lastIndex}/${m.lastTerm}${m.transfer ? ' transfer' : ''}`;
    case 'voteResponse':
    case 'preVoteResponse':
      return `${head} ${m.reject ? 'reject' : 'grant'}`;
    case 'heartbeat':
      return `${head} commit=${m.commit}${describeContext(m.context)}`;
    case 'heartbeatResponse':
      return `${head}${describeContext(m.context)}`;
    case 'timeoutNow':
    case 'beat':
    case 'checkQuorum':
      return head;
    case 'hup':
      return `${head}${m.transfer ? ' transfer' : ''}`;
    case 'propose':
      return `${head} proposals=${m.data.length}`;
    case 'readIndex':
      return `${head}${describeContext(m.context)}`;
    case 'readIndexResponse':
      return `${head} index=${m.index}${describeContext(m.context)}`;
    case 'snapshot':
      return `${head} snapshot=${m.snapshot.index}/${m.snapshot.term} chunk=${m.offset}+${m.snapshot.data.length}B${m.done ? ' done' : ''}`;
    case 'snapshotResponse':
      return `${head} ${m.reject ? 'reject' : 'accept'} snapshot=${m.index} offset=${m.offset}`;
    default:
      return unreachable(m, 'message');
  }
}

/** One line per Ready, e.g. `hs=t3/v1/c7 persist=8..9 apply=6..7 send=2 reads=1 soft=leader/1`. */
export function describeReady(ready: Ready): string {
  const parts: string[] = [];
  if (ready.softState !== null) parts.push(`soft=${ready.softState.role}/${ready.softState.leaderId}`);
  if (ready.hardState !== null) parts.push(`hs=t${ready.hardState.term}/v${ready.hardState.vote}/c${ready.hardState.commit}`);
  if (ready.snapshot !== null) parts.push(`snapshot=${ready.snapshot.index}/${ready.snapshot.term}`);
  if (ready.entries.count > 0) parts.push(`persist=${ready.entries.firstIndex}..${ready.entries.firstIndex + ready.entries.count - 1}`);
  if (ready.committedEntries.count > 0) {
    parts.push(`apply=${ready.committedEntries.firstIndex}..${ready.committedEntries.firstIndex + ready.committedEntries.count - 1}`);
  }
  if (ready.messages.length > 0) parts.push(`send=${ready.messages.length}`);
  if (ready.readStates.length > 0) parts.push(`reads=${ready.readStates.length}`);
  if (ready.mustSync) parts.push('sync');
  return parts.length === 0 ? 'empty' : parts.join(' ');
}
