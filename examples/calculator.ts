/**
 * The seed tutorial's calculator: `Handlers.divide` and the
 * `InvalidOperation` error it throws, shared by the example server and client.
 *
 * @module
 */

/** Thrown by {@linkcode Handlers.divide} when asked to divide by zero. */
export class InvalidOperation extends Error {
  /** @param message What was invalid. */
  constructor(message = "Invalid operation") {
    super(message);
    this.name = "InvalidOperation";
  }
}

/** The methods the example server exposes. */
export class Handlers {
  /**
   * Divides `num1` by `num2`.
   *
   * @throws {InvalidOperation} When `num2` is 0.
   */
  static divide(num1: number, num2: number): number {
    if (num2 === 0) {
      throw new InvalidOperation(`Cannot divide ${num1} by zero`);
    }
    return num1 / num2;
  }
}
