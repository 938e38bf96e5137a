/**
 * Service paths in the registry: where a service's members live
 * (`<root>/<service>`). ZooKeeper-free; the path syntax is ZooKeeper's.
 *
 * @module
 */

/**
 * Whether `path` is a ZooKeeper path: `/`, or absolute with no empty, `.` or
 * `..` segment, no trailing slash and no NUL.
 *
 * @param path The path.
 * @returns `true` when ZooKeeper would accept it.
 */
export function isZooKeeperPath(path: unknown): path is string {
  if (typeof path !== "string" || !path.startsWith("/")) return false;
  if (path === "/") return true;
  return path.slice(1).split("/").every((segment) =>
    segment !== "" && segment !== "." && segment !== ".." &&
    !segment.includes("\u0000")
  );
}

/**
 * The parent path of a service's member nodes.
 *
 * @param options `path`, or `root` and `service`.
 * @returns E.g. `/rpc/calculator`.
 *
 * @example
 * ```ts
 * import { servicePath } from "@zkrpc/zkrpc/zookeeper";
 * import assert from "node:assert/strict";
 *
 * assert.equal(servicePath({ service: "calculator" }), "/rpc/calculator");
 * assert.equal(servicePath({ path: "/rpc" }), "/rpc");
 * assert.equal(servicePath({ root: "/", service: "calculator" }), "/calculator");
 * assert.throws(() => servicePath({ root: "/rpc/", service: "calculator" }), TypeError);
 * ```
 */
export function servicePath(
  options: {
    path?: string | undefined;
    root?: string | undefined;
    service?: string | undefined;
  },
): string {
  if (options.path !== undefined) {
    return checkPath(options.path, "path");
  }
  if (
    typeof options.service !== "string" ||
    !/^[\w.-]+$/.test(options.service) || /^\.\.?$/.test(options.service)
  ) {
    throw new TypeError(
      `Cannot find service path: service name must match [A-Za-z0-9_.-]+, got ${
        JSON.stringify(options.service)
      }`,
    );
  }
  const root = options.root ?? "/rpc";
  return `${root === "/" ? "" : checkPath(root, "root")}/${options.service}`;
}

/** A ZooKeeper path: absolute, no empty segment, no trailing slash. */
function checkPath(path: string, name: string): string {
  if (!isZooKeeperPath(path) || path === "/") {
    throw new TypeError(
      `Cannot find service path: ${name} must be an absolute ZooKeeper path like "/rpc" (no trailing or double slash), got ${
        JSON.stringify(path)
      }`,
    );
  }
  return path;
}
