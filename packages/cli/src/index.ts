/** The raftlab command. */
export {};
