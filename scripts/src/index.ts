/** Bench lab tooling. */
export {};
