/**
 * The file operations WalStorage uses, behind one small interface so that tests and the simulator can
 * count, delay or fail them (a failing fsync, a full disk) without touching the real file system.
 * `nodeFileSystem` is the real thing: node:fs on file descriptors, appends with O_APPEND, data
 * durability with fdatasync, directory entries made durable by fsync on the directory.
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
