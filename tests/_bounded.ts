/**
 * Preloaded before every test module (`deno test --preload
 * tests/_bounded.ts`, in every test task of deno.json): wraps `Deno.test` so
 * that each test, and each step, fails once it has run
 * {@linkcode TEST_TIMEOUT} ms, naming itself, instead of hanging the suite.
 *
 * It is the bound of last resort for a wait without its own deadline (a call
 * on a `Connection` opened without `timeout`, a promise no event settles, a
 * mutant that stops a reply): the test fails within minutes and the run goes
 * on with the next test (the sanitizers then also report what the hung test
 * left pending). Waits in tests still take their own, tighter deadlines
 * (`within`, `waitFor`, `nextEvent` in `tests/_wait.ts`); the discipline
 * test (`tests/test_discipline_test.ts`) checks the preload is in place.
 *
 * @example A test that never settles fails after TEST_TIMEOUT ms
 * ```ts ignore
 * Deno.test("hangs", () => new Promise(() => {}));
 * // error: Test "hangs" did not finish within 180000 ms …
 * ```
 *
 * @module
 */

/** Most ms one test (or one step) may run. @default 180000 (3 minutes) */
export const TEST_TIMEOUT = 180_000;

type TestFn = (t: Deno.TestContext) => void | Promise<void>;

/** What a test that ran out of time rejects with. */
export class TestTimeoutError extends Error {
  constructor(name: string, ms: number) {
    super(
      `Test "${name}" did not finish within ${ms} ms: a wait without a ` +
        "deadline (see tests/_bounded.ts)",
    );
    this.name = "TestTimeoutError";
  }
}

/** `fn` raced against a timer of `ms` (cleared when `fn` settles). */
export function bounded(
  name: string,
  fn: TestFn,
  ms = TEST_TIMEOUT,
): (t: Deno.TestContext) => Promise<void> {
  return async (t) => {
    const wrapped = boundSteps(t);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(() => fn(wrapped)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new TestTimeoutError(name, ms)), ms);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  };
}

/** The test context with `step` bounding each step too. */
function boundSteps(t: Deno.TestContext): Deno.TestContext {
  return new Proxy(t, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (key !== "step" || typeof value !== "function") return value;
      return (...args: unknown[]) => value.apply(target, withBoundFn(args));
    },
  });
}

/** `Deno.test`'s (or `t.step`'s) arguments with the function bounded. */
function withBoundFn(args: unknown[]): unknown[] {
  const last = args.length - 1;
  if (typeof args[last] === "function") {
    const fn = args[last] as TestFn & { name: string };
    const name = typeof args[0] === "string"
      ? args[0]
      : (args[0] as { name?: string }).name ?? fn.name;
    const out = [...args];
    out[last] = bounded(name || "anonymous", fn);
    return out;
  }
  const def = args[0] as Deno.TestDefinition;
  return [{ ...def, fn: bounded(def.name, def.fn as TestFn) }];
}

const BOUNDED = Symbol.for("zkrpc.tests.bounded");
/** The symbol Deno reads a test's location from (else the caller of Deno.test). */
const LOCATION = Symbol.for("Deno.test.location");

/** The args with the function bounded and located where the test is written. */
function located(args: unknown[]): unknown[] {
  const out = withBoundFn(args);
  // Frame 0 is `Error`, 1 this function, 2 the wrapper, 3 the test module.
  const frame = new Error().stack?.split("\n")[3] ?? "";
  const at = /\(?((?:file|https?):.*:\d+:\d+)\)?$/.exec(frame.trim())?.[1];
  if (at !== undefined) {
    const last = out.length - 1;
    const fn = typeof out[last] === "function"
      ? out[last]
      : (out[0] as { fn: unknown }).fn;
    Object.defineProperty(fn, LOCATION, { value: at });
  }
  return out;
}

const original = Deno.test;
const test = ((...args: unknown[]) =>
  // deno-lint-ignore no-explicit-any
  (original as any)(...located(args))) as typeof Deno.test;
test.ignore = ((...args: unknown[]) =>
  // deno-lint-ignore no-explicit-any
  (original.ignore as any)(...located(args))) as typeof Deno.test.ignore;
test.only = ((...args: unknown[]) =>
  // deno-lint-ignore no-explicit-any
  (original.only as any)(...located(args))) as typeof Deno.test.only;
Object.defineProperty(test, BOUNDED, { value: TEST_TIMEOUT });
Object.defineProperty(Deno, "test", { value: test, configurable: true });

/** Whether `Deno.test` is the bounded one (this module was preloaded). */
export function isBounded(): boolean {
  return BOUNDED in Deno.test;
}
