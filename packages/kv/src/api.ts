/**
 * The KV service's HTTP contract, shared by the server and the client: routes, header names, error
 * codes with their HTTP statuses, and the JSON shapes of responses.
 *
 * Every error is `{ "error": { "code", "message", ...details } }` with a stable `code`; clients switch
 * on the code, never on the message or on the status alone (several codes share a status).
 */

/** Header carrying the client id of a session-stamped write (thesis §6.3). */
export const clientIdHeader = 'raftlab-client-id';
/** Header carrying the write's sequence number within its session, from 1. */
export const sequenceHeader = 'raftlab-sequence';
/** Header carrying the lowest sequence the client still awaits a response for. */
export const lowestPendingHeader = 'raftlab-lowest-pending';
/** Set by a follower on a request it forwards to the leader: the receiver never forwards it again. */
export const forwardedHeader = 'raftlab-forwarded-by';
/** On every response: the id of the node that answered. */
export const nodeHeader = 'raftlab-node';

/** Read consistency levels a request may ask for (`?consistency=`); linearizable by default. */
export const readConsistencies = ['linearizable', 'lease', 'stale'] as const;

/**
 * Every error code of the API:
 *  - key-not-found (404): GET of an absent key;
 *  - route-not-found (404), method-not-allowed (405, with an Allow header);
 *  - cas-failed (409): the key did not hold `expected`; `actual` says what it held (null: absent);
 *  - malformed-json (400), invalid-request (400: a field missing or of the wrong type, or not even
 *    HTTP), invalid-key
 *    (400: empty, bad percent-encoding or not encodable as UTF-8), invalid-utf8 (400: body not UTF-8),
 *    invalid-consistency (400), invalid-session (400: bad session headers);
 *  - body-too-large, key-too-large, value-too-large (413);
 *  - unsupported-media-type (415); headers-too-large (431);
 *  - unknown-session (412): the session was never registered, was evicted or expired: register again;
 *  - sequence-acknowledged (409): a late duplicate of a write the client already acknowledged;
 *  - session-window-full (429): too many unacknowledged writes in the session; retry after some return;
 *  - no-quorum (503): this node cannot reach a leader backed by a quorum (cut off, election under way,
 *    leader unreachable, or the request did not commit in time). Nothing was read; a write may or may
 *    not have been applied: retry it with the same session stamp for exactly-once;
 *  - busy (503): the leader's queues are at their bound; retry later;
 *  - shutting-down (503): the node is draining before it stops;
 *  - not-leader (307): redirect mode only, with Location pointing at the leader;
 *  - admin-disabled (403): admin routes need the server's `--admin` flag;
 *  - store-full (507): the store's byte bound would be exceeded;
 *  - internal (500).
 */
export type KvApiErrorCode =
  | 'key-not-found'
  | 'route-not-found'
  | 'method-not-allowed'
  | 'cas-failed'
  | 'malformed-json'
  | 'invalid-request'
  | 'invalid-key'
  | 'invalid-utf8'
  | 'invalid-consistency'
  | 'invalid-session'
  | 'body-too-large'
  | 'key-too-large'
  | 'value-too-large'
  | 'unsupported-media-type'
  | 'headers-too-large'
  | 'unknown-session'
  | 'sequence-acknowledged'
  | 'session-window-full'
  | 'no-quorum'
  | 'busy'
  | 'shutting-down'
  | 'not-leader'
  | 'admin-disabled'
  | 'store-full'
  | 'internal';

/** The HTTP status of each error code. */
export const errorStatus: Readonly<Record<KvApiErrorCode, number>> = Object.freeze({
  'key-not-found': 404,
  'route-not-found': 404,
  'method-not-allowed': 405,
  'cas-failed': 409,
  'malformed-json': 400,
  'invalid-request': 400,
  'invalid-key': 400,
  'invalid-utf8': 400,
  'invalid-consistency': 400,
  'invalid-session': 400,
  'body-too-large': 413,
  'key-too-large': 413,
  'value-too-large': 413,
  'unsupported-media-type': 415,
  'headers-too-large': 431,
  'unknown-session': 412,
  'sequence-acknowledged': 409,
  'session-window-full': 429,
  'no-quorum': 503,
  busy: 503,
  'shutting-down': 503,
  'not-leader': 307,
  'admin-disabled': 403,
  'store-full': 507,
  internal: 500,
});

/** The body of every error response. */
export interface ErrorBody {
  readonly error: {
    readonly code: KvApiErrorCode;
    readonly message: string;
    /** cas-failed: the value the key held (null: absent). */
    readonly actual?: string | null;
    /** not-leader and no-quorum: the leader this node knows of (0: none). */
    readonly leader?: number;
  };
}

/** An API error on the server side: thrown by handlers, turned into an error response. */
export class KvApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: KvApiErrorCode,
    message: string,
    readonly details: { readonly actual?: string | null; readonly leader?: number; readonly location?: string; readonly allow?: string } = {},
  ) {
    super(message);
    this.name = 'KvApiError';
    this.status = errorStatus[code];
  }

  /** The JSON body of this error. */
  body(): ErrorBody {
    const error: { code: KvApiErrorCode; message: string; actual?: string | null; leader?: number } = { code: this.code, message: this.message };
    if (this.details.actual !== undefined) error.actual = this.details.actual;
    if (this.details.leader !== undefined) error.leader = this.details.leader;
    return { error };
  }
}

/** `GET /v1/kv/:key` (and a GET through /v1/command). */
export interface GetResponse {
  readonly key: string;
  readonly value: string;
}

/**
 * `PUT /v1/kv/:key` (and SET through /v1/command): the value replaced (null: none) and the log index
 * of the entry that answered. Writes are ordered by that index. A retried session-stamped write gets
 * its original result, with the index of the retry's own entry (which changed nothing).
 */
export interface PutResponse {
  readonly key: string;
  readonly previous: string | null;
  readonly index: number;
}

/** `DELETE /v1/kv/:key`: whether the key existed. */
export interface DeleteResponse {
  readonly key: string;
  readonly existed: boolean;
  readonly index: number;
}

/** `POST /v1/kv/:key/cas` on success (failure is a 409 cas-failed error with `actual`). */
export interface CasResponse {
  readonly key: string;
  readonly value: string;
  readonly index: number;
}

/** `POST /v1/session`: the id to stamp writes with. */
export interface SessionResponse {
  readonly clientId: number;
}

/** One peer in `GET /v1/status`. */
export interface PeerStatus {
  readonly id: number;
  /** The peer's HTTP address, when known. */
  readonly http: string | null;
  /** Leader only: the replication progress of the peer. */
  readonly match?: number;
  readonly next?: number;
  readonly state?: string;
}

/** `GET /v1/status`. */
export interface StatusResponse {
  readonly id: number;
  readonly role: string;
  readonly term: number;
  /** 0 when no leader is known. */
  readonly leader: number;
  /** The leader's HTTP address, when known. */
  readonly leaderHttp: string | null;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly peers: readonly PeerStatus[];
  /** Peers this node is cut off from by the admin partition endpoint. */
  readonly partitionedFrom: readonly number[];
  readonly keys: number;
  readonly sessions: number;
  readonly storage: { readonly kind: string; readonly fsync: string; readonly durable: boolean };
  readonly shuttingDown: boolean;
}
