/**
 * Wraps an async task so that calls while it runs coalesce into one more run
 * after it, never two at once. Used for "re-read the registry" work, which
 * many events can ask for at the same time.
 *
 * @param task The work to run.
 * @returns A function that requests a run and resolves when a run that
 * started after the request has finished.
 */
export function coalesced(task: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let again: Promise<void> | undefined;
  const start = (): Promise<void> => {
    const run: Promise<void> = task().finally(() => {
      if (running === run) running = undefined;
    });
    running = run;
    return run;
  };
  return () => {
    // A run queued in `again` has not started yet (the last run's promise
    // settles a few microtasks after it cleared `running`): join it rather
    // than start a second run beside it.
    if (running === undefined && again === undefined) return start();
    again ??= (running ?? Promise.resolve()).catch(() => {}).then(() => {
      again = undefined;
      return start();
    });
    return again;
  };
}
