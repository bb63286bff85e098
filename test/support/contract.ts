import { afterEach } from 'node:test';

/** How a contract suite treats the stores it makes, beyond the contract itself. */
export interface ContractOptions<S> {
  /**
   * After each test, and each run of a property: checks what the store
   * keeps beyond its copy in memory (PostgreSQL: the tables hold what the
   * store holds).
   */
  verify?: (store: S) => Promise<void>;
  /** Closes a store once checked; default its own close(), when it has one. */
  close?: (store: S) => void | Promise<void>;
  /** Runs of each property (stores that are costly to make run fewer); default as written. */
  propertyRuns?: (runs: number) => number;
}

/**
 * The stores of one contract suite: call inside its describe(). Each test
 * makes its stores with create(); after the test each is verified and
 * closed. A property makes one per run and settles it at the run's end.
 */
export function contractStores<S>(make: () => S | Promise<S>, options: ContractOptions<S>) {
  const open: S[] = [];
  const settle = async (store: S): Promise<void> => {
    open.splice(open.indexOf(store), 1);
    try {
      await options.verify?.(store);
    } finally {
      if (options.close) await options.close(store);
      else await (store as { close?: () => void | Promise<void> }).close?.();
    }
  };
  afterEach(async () => {
    for (const store of [...open]) await settle(store);
  });
  return {
    create: async (): Promise<S> => {
      const store = await make();
      open.push(store);
      return store;
    },
    settle,
    runs: (count: number) => options.propertyRuns?.(count) ?? count,
  };
}
