/**
 * Starts the bench's throw-away ZooKeeper through the project's own
 * `testing.ts` (`startZooKeeper()`), once per run.
 *
 * @module
 */
import { type BenchZooKeeper, requireModule } from "./context.ts";

interface TestingModule {
  startZooKeeper(): Promise<
    { connectionString: string; stop(): Promise<void> }
  >;
}

/**
 * Returns a function that starts ZooKeeper on first call and then returns
 * the same instance, plus a stop function for the runner.
 *
 * @returns `get` and `stop`.
 */
export function sharedZooKeeper(): {
  get(): Promise<BenchZooKeeper>;
  stop(): Promise<void>;
} {
  let started: Promise<BenchZooKeeper> | undefined;
  return {
    get(): Promise<BenchZooKeeper> {
      started ??= (async () => {
        await requireModule("testing.ts", "startZooKeeper");
        const url = new URL("../testing.ts", import.meta.url).href;
        const testing = await import(url) as TestingModule;
        const t0 = performance.now();
        const zk = await testing.startZooKeeper();
        console.log(
          `zookeeper: started at ${zk.connectionString} in ${
            Math.round(performance.now() - t0)
          } ms`,
        );
        return { connectionString: zk.connectionString, stop: () => zk.stop() };
      })();
      return started;
    },
    async stop(): Promise<void> {
      if (started === undefined) return;
      try {
        await (await started).stop();
      } catch {
        // never started
      }
    },
  };
}
