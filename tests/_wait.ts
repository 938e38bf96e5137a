/**
 * The tests' deadlines: {@linkcode within}, {@linkcode waitFor} and
 * {@linkcode nextEvent}, from `src/testing/wait.ts` (shared with the
 * benchmarks and the testing module).
 *
 * @module
 */

export {
  nextEvent,
  waitFor,
  type WaitForOptions,
  WaitTimeoutError,
  within,
} from "../src/testing/wait.ts";
