/**
 * Quorum arithmetic, leaf-first: it knows voters and numbers, nothing of messages or roles.
 * A majority is strictly more than half of the voters (§5.2): 3 of 4, 3 of 5, 6 of 10.
 */

/** Votes needed to win among `voterCount` voters. */
export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/** Outcome of a vote tally. */
export type VoteResult = 'won' | 'lost' | 'pending';

/** Tallies an election: won once a majority granted, lost once a majority can no longer grant. */
export function voteResult(granted: number, rejected: number, voterCount: number): VoteResult {
  const needed = majority(voterCount);
  if (granted >= needed) return 'won';
  if (voterCount - rejected < needed) return 'lost';
  return 'pending';
}

/**
 * The highest index stored on a majority: the majority-th largest of `matches` (one per voter).
 * `scratch` must hold at least matches.length numbers; it is overwritten (no allocation per call).
 */
export function quorumIndex(matches: ArrayLike<number>, scratch: Float64Array): number {
  const count = matches.length;
  // Insertion sort, descending: voter sets are small (<= tens), and this runs once per response batch.
  for (let i = 0; i < count; i++) {
    const value = matches[i] as number;
    let j = i - 1;
    while (j >= 0 && (scratch[j] as number) < value) {
      scratch[j + 1] = scratch[j] as number;
      j -= 1;
    }
    scratch[j + 1] = value;
  }
  return scratch[majority(count) - 1] as number;
}
