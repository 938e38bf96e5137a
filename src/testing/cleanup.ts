/**
 * Last-resort cleanup when the Deno process exits with ZooKeeper still
 * running (a test runner interrupted, a forgotten `stop()`): kill the JVMs and
 * remove their temporary directories synchronously on `unload`.
 *
 * @module
 */

const tasks = new Set<() => void>();
let installed = false;

function runAll(): void {
  for (const task of tasks) {
    try {
      task();
    } catch {
      // best effort at exit
    }
  }
  tasks.clear();
}

/**
 * Registers `task` to run synchronously if the process unloads before the
 * returned function unregisters it.
 *
 * @param task A synchronous cleanup step.
 * @returns A function that unregisters the task.
 */
export function onUnload(task: () => void): () => void {
  if (!installed) {
    globalThis.addEventListener("unload", runAll);
    installed = true;
  }
  tasks.add(task);
  return () => {
    tasks.delete(task);
  };
}
