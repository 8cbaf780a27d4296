/** Bench lab. */
export {};
