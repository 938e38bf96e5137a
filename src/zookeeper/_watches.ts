/**
 * The watchers of one ZooKeeper session: the wrappers of its one-shot
 * watches and the persistent watches by path and mode, with the routing of
 * a persistent watch event to the watchers it concerns.
 *
 * @module
 */

import type { ClientWatchEvent, OneShotWatcher } from "./_wire_client.ts";
import {
  type PersistentWatchMode,
  toWatchEvent,
  type Watcher,
} from "./types.ts";

/** One persistent watch: its path, mode and the watchers on it. */
interface PersistentEntry {
  path: string;
  mode: PersistentWatchMode;
  watchers: Set<Watcher>;
}

/** Calls a watcher; a throwing watcher is reported, never rethrown. */
function notify(watch: Watcher, event: ClientWatchEvent): void {
  try {
    watch(toWatchEvent(event));
  } catch (error) {
    reportError(error);
  }
}

/** The watchers of one session. */
export class SessionWatches {
  #closed: () => boolean;
  #oneShot = new WeakMap<Watcher, OneShotWatcher>();
  /** Persistent watches by `"<mode> <path>"`. */
  #persistent = new Map<string, PersistentEntry>();

  /** @param closed Whether the session is closed: then no watcher runs. */
  constructor(closed: () => boolean) {
    this.#closed = closed;
  }

  /**
   * The client's callback for a one-shot watch (the same one for the same
   * `watch`, so that the client does not call it twice).
   *
   * @param watch The user's watcher, or `undefined` for none.
   * @returns The callback, or `undefined`.
   */
  oneShot(watch: Watcher | undefined): OneShotWatcher | undefined {
    if (watch === undefined) return undefined;
    let wrapped = this.#oneShot.get(watch);
    if (wrapped === undefined) {
      wrapped = (event: ClientWatchEvent) => {
        if (!this.#closed()) notify(watch, event);
      };
      this.#oneShot.set(watch, wrapped);
    }
    return wrapped;
  }

  /**
   * Registers a persistent watcher (before the request: events may follow
   * its reply at once).
   *
   * @param path The watched path.
   * @param watch The watcher.
   * @param mode The mode; `"persistent_recursive"` when `undefined`.
   * @returns Its key, its mode and whether it was new on that key.
   * @throws {TypeError} When the mode or the watcher is malformed.
   */
  add(
    path: string,
    watch: Watcher,
    mode: PersistentWatchMode = "persistent_recursive",
  ): { key: string; mode: PersistentWatchMode; added: boolean } {
    if (mode !== "persistent" && mode !== "persistent_recursive") {
      throw new TypeError(
        `Cannot watch "${path}": mode must be "persistent" or "persistent_recursive", got ${
          JSON.stringify(mode)
        }`,
      );
    }
    if (typeof watch !== "function") {
      throw new TypeError(`Cannot watch "${path}": watch must be a function`);
    }
    const key = `${mode} ${path}`;
    let entry = this.#persistent.get(key);
    if (entry === undefined) {
      entry = { path, mode, watchers: new Set() };
      this.#persistent.set(key, entry);
    }
    const added = !entry.watchers.has(watch);
    entry.watchers.add(watch);
    return { key, mode, added };
  }

  /**
   * Drops a persistent watcher.
   *
   * @param key Its key, from {@linkcode SessionWatches.add}.
   * @param watch The watcher.
   * @returns The watch's path and mode when it was the last watcher on them
   * (ZooKeeper's watch can go), else `undefined`.
   */
  forget(
    key: string,
    watch: Watcher,
  ): { path: string; mode: PersistentWatchMode } | undefined {
    const entry = this.#persistent.get(key);
    if (entry === undefined || !entry.watchers.delete(watch)) return undefined;
    if (entry.watchers.size > 0) return undefined;
    this.#persistent.delete(key);
    return entry;
  }

  /**
   * Calls the persistent watchers an event concerns: those on its path and
   * the recursive ones above it.
   *
   * @param event The client's event.
   */
  dispatch(event: ClientWatchEvent): void {
    if (this.#closed() || this.#persistent.size === 0) return;
    if (event.type < 1 || event.type > 4) return; // watch removed and others
    for (const { path, mode, watchers } of [...this.#persistent.values()]) {
      const concerned = event.path === path ||
        (mode === "persistent_recursive" &&
          (path === "/" || event.path.startsWith(`${path}/`)));
      if (!concerned) continue;
      for (const watch of [...watchers]) notify(watch, event);
    }
  }
}
