/**
 * The file operations WalStorage uses, behind one small interface so that tests and the simulator can
 * count, delay or fail them (a failing fsync, a full disk) without touching the real file system.
 * `nodeFileSystem` is the real thing: node:fs on file descriptors, appends with O_APPEND, data
 * durability with fdatasync, directory entries made durable by fsync on the directory.
 *
 * Where the I/O runs. node:fs callbacks run each call on libuv's threadpool: the event loop hands the
 * call to a worker thread (futex wake), the worker does the syscall, then wakes the loop (eventfd,
 * epoll) to run the callback. On a small virtual machine that round trip costs more than the work: a
 * 200-byte write to the page cache takes a few microseconds, the hop around it 30-60 µs and four more
 * context switches (measured here: write + fdatasync p50 194 µs through the threadpool, 94 µs inline).
 * `inlineFileSystem(...)` runs writes, and optionally fdatasync, on the calling thread instead; the
 * promises it returns are already settled. Inline writes are a clear win for a WAL whose appends are
 * small. An inline fdatasync blocks the event loop for the whole device flush: right for a follower
 * or a lightly loaded node (the shortest path from message to durable acknowledgement), a trade-off
 * for a busy leader that could parse requests meanwhile.
 */
import * as fs from 'node:fs';

/** What WalStorage needs from a file system. Paths are absolute or relative to the process. */
export interface StorageFileSystem {
  /** Creates the directory and its parents when missing. */
  makeDirectory(path: string): Promise<void>;
  /** Names of the entries of a directory. */
  listDirectory(path: string): Promise<string[]>;
  /** Whole contents of a file. */
  readFile(path: string): Promise<Uint8Array>;
  /**
   * Opens a file for writing: `append` appends to an existing or new file, `create` creates a new file
   * and fails if it exists, `replace` creates or empties it. Returns a file descriptor.
   */
  open(path: string, mode: 'append' | 'create' | 'replace'): Promise<number>;
  /** Writes the buffers in order at the end (append mode) or the current position; returns bytes written. */
  writev(fd: number, buffers: readonly Uint8Array[]): Promise<number>;
  /** fdatasync: the file's data (and the metadata needed to read it) reaches stable storage. */
  syncData(fd: number): Promise<void>;
  /** Closes a file descriptor. */
  close(fd: number): Promise<void>;
  /** fsync of a directory: created, renamed or removed names in it reach stable storage. */
  syncDirectory(path: string): Promise<void>;
  /** Cuts a file to `length` bytes. */
  truncate(path: string, length: number): Promise<void>;
  /** Renames a file (atomically replacing the target). */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file. */
  remove(path: string): Promise<void>;
}

const openFlags = {
  append: fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND,
  create: fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL,
  replace: fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC,
} as const;

/** The real file system (node:fs). Callback APIs on raw descriptors: cheaper than FileHandle per call. */
export const nodeFileSystem: StorageFileSystem = {
  async makeDirectory(path) {
    await fs.promises.mkdir(path, { recursive: true });
  },
  listDirectory(path) {
    return fs.promises.readdir(path);
  },
  readFile(path) {
    return fs.promises.readFile(path);
  },
  open(path, mode) {
    return new Promise((resolve, reject) => {
      fs.open(path, openFlags[mode], 0o644, (error, fd) => (error ? reject(error) : resolve(fd)));
    });
  },
  writev(fd, buffers) {
    return new Promise((resolve, reject) => {
      // node:fs accepts any ArrayBufferView; libuv loops over partial writes and over IOV_MAX.
      fs.writev(fd, buffers as Uint8Array[], (error, written) => (error ? reject(error) : resolve(written)));
    });
  },
  syncData(fd) {
    return new Promise((resolve, reject) => {
      fs.fdatasync(fd, (error) => (error ? reject(error) : resolve()));
    });
  },
  close(fd) {
    return new Promise((resolve, reject) => {
      fs.close(fd, (error) => (error ? reject(error) : resolve()));
    });
  },
  async syncDirectory(path) {
    const handle = await fs.promises.open(path, fs.constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  truncate(path, length) {
    return fs.promises.truncate(path, length);
  },
  rename(from, to) {
    return fs.promises.rename(from, to);
  },
  remove(path) {
    return fs.promises.unlink(path);
  },
};

/** Which operations inlineFileSystem runs on the calling thread. */
export interface InlineIo {
  /** writev on the calling thread (default true). */
  readonly writes?: boolean;
  /**
   * fdatasync on the calling thread, blocking it for the device flush (default false). A function is
   * asked at each fdatasync, so a driver can switch with its role (inline on a follower, whose loop has
   * nothing else to do meanwhile; threadpool on a busy leader).
   */
  readonly syncs?: boolean | (() => boolean);
}

/**
 * nodeFileSystem with writes (and optionally fdatasync) done synchronously on the calling thread (see
 * the file comment). Failures still arrive as rejected promises, as from nodeFileSystem.
 */
export function inlineFileSystem(inline: InlineIo = {}): StorageFileSystem {
  const writes = inline.writes ?? true;
  const syncs = inline.syncs ?? false;
  const syncInline = typeof syncs === 'function' ? syncs : () => syncs;
  return {
    ...nodeFileSystem,
    writev(fd, buffers) {
      if (!writes) return nodeFileSystem.writev(fd, buffers);
      try {
        // One writev(2); a short write (a full disk) is caught by the caller's length check.
        return Promise.resolve(fs.writevSync(fd, buffers as Uint8Array[]));
      } catch (error) {
        return Promise.reject(error as Error);
      }
    },
    syncData(fd) {
      if (!syncInline()) return nodeFileSystem.syncData(fd);
      try {
        fs.fdatasyncSync(fd);
        return Promise.resolve();
      } catch (error) {
        return Promise.reject(error as Error);
      }
    },
  };
}
