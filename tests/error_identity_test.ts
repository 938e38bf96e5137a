/**
 * Errors keep their identity across a real server: a registered class is
 * revived whether the wire names its class or its instances' `name` (with a
 * warning once that points to `registerAs` when only the class name
 * matched); an unregistered remote error names the remote error, the method
 * and the service, and its stack shows the caller's line.
 */
import assert from "node:assert/strict";
import {
  DistributedChannel,
  type DistributedChannelOptions,
  StaticMembership,
} from "../mod.ts";
import { Connection } from "../src/client/connection.ts";
import { ErrorRegistry, RemoteError } from "../src/errors.ts";
import { type RpcServer, serve } from "../src/server/server.ts";
import { within } from "./_wait.ts";

const HOST = "127.0.0.1";

/** An error class whose instances carry another name than the class. */
class OutOfStockError extends Error {
  override name = "OutOfStock";
  constructor(readonly sku: string, message: string) {
    super(message);
  }
}

/** The same shape, its name set on the prototype. */
class SoldOutError extends Error {
  constructor(readonly sku: string, message: string) {
    super(message);
  }
}
SoldOutError.prototype.name = "SoldOut";

/** An error whose name is set in its constructor. */
class QuotaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Quota";
  }
}

/** A hierarchy whose subclasses share their parent's name. */
class StockError extends Error {
  override name = "Stock";
}
class BackorderError extends StockError {
  constructor(readonly days: number) {
    super(`Back in ${days} days`);
  }
}

function inventory(): RpcServer {
  return serve({
    order(days: number): never {
      if (days === 0) throw new StockError("No stock");
      throw new BackorderError(days);
    },
    buy(sku: string): never {
      throw new OutOfStockError(sku, `No ${sku} left`);
    },
    sell(sku: string): never {
      throw new SoldOutError(sku, `Sold out of ${sku}`);
    },
    spend(): never {
      throw new QuotaError("Over quota");
    },
  }, { hostname: HOST, port: 0 });
}

function channelTo(
  server: RpcServer,
  options: Pick<DistributedChannelOptions, "errors" | "onWarning">,
): DistributedChannel {
  return new DistributedChannel({
    membership: new StaticMembership([{ host: HOST, port: server.addr.port }]),
    service: "inventory",
    timeout: 5000,
    ...options,
  });
}

Deno.test("a registered class whose instances set another name is revived by its class name, with one warning naming registerAs", async () => {
  const server = inventory();
  const warnings: string[] = [];
  await using channel = channelTo(server, {
    errors: [OutOfStockError, QuotaError],
    onWarning: (message) => warnings.push(message),
  });
  const errors: unknown[] = [];
  for (const method of ["buy", "buy", "spend"]) {
    errors.push(
      await within(
        channel.call(method, ["A-1"]).catch((e) => e),
        10_000,
        method,
      ),
    );
  }
  await channel.close();
  await server.close();
  const [first, second, quota] = errors as [Error, Error, Error];
  for (const error of [first, second]) {
    assert.ok(error instanceof OutOfStockError, String(error));
    assert.equal(error.name, "OutOfStock");
    assert.equal(error.message, "No A-1 left");
    assert.equal(error.sku, "A-1");
  }
  assert.ok(quota instanceof QuotaError, String(quota));
  assert.equal(quota.name, "Quota");
  assert.equal(warnings.length, 2, warnings.join("\n")); // once per name
  assert.match(warnings[0]!, /"OutOfStock".*OutOfStockError/);
  assert.match(warnings[0]!, /registerAs\("OutOfStock", OutOfStockError\)/);
  assert.match(warnings[1]!, /registerAs\("Quota", QuotaError\)/);
});

Deno.test("a class registered under its instances' name, or naming itself on its prototype, is revived without a warning", async () => {
  const server = inventory();
  const warnings: string[] = [];
  const errors = new ErrorRegistry({
    onWarning: (message) => warnings.push(message),
  })
    .registerAs("OutOfStock", OutOfStockError)
    .register(SoldOutError);
  await using conn = await Connection.connect(
    { hostname: HOST, port: server.addr.port },
    { errors },
  );
  const bought = await within(
    conn.call("buy", ["B-2"], { timeout: 5000 }).catch((e) => e),
    10_000,
    "buy",
  );
  const sold = await within(
    conn.call("sell", ["C-3"], { timeout: 5000 }).catch((e) => e),
    10_000,
    "sell",
  );
  conn.close();
  await server.close();
  assert.ok(bought instanceof OutOfStockError, String(bought));
  assert.equal(bought.sku, "B-2");
  assert.ok(sold instanceof SoldOutError, String(sold));
  assert.equal(sold.name, "SoldOut");
  assert.equal(sold.sku, "C-3");
  assert.deepEqual(warnings, []);
});

/** Calls `buy` from a function whose name the stack must show. */
async function checkoutFromTheTest(
  call: () => Promise<unknown>,
): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  throw new Error("the call should fail");
}

Deno.test("an unregistered remote error names the remote error, the method and the service, and its stack shows the caller", async () => {
  const server = inventory();
  await using channel = channelTo(server, {});
  const stub = channel.stub<{ buy(sku: string): never }>();
  const direct = await within(
    checkoutFromTheTest(() => channel.call("buy", ["A-1"])),
    10_000,
    "a channel call",
  );
  const viaStub = await within(
    checkoutFromTheTest(() => stub.buy("A-1")),
    10_000,
    "a stub call",
  );
  await using conn = await Connection.connect({
    hostname: HOST,
    port: server.addr.port,
  });
  const onConnection = await within(
    checkoutFromTheTest(() => conn.call("buy", ["A-1"], { timeout: 5000 })),
    10_000,
    "a connection call",
  );
  conn.close();
  await channel.close();
  await server.close();
  for (const error of [direct, viaStub]) {
    assert.ok(error instanceof RemoteError, String(error));
    assert.equal(
      error.message,
      'Cannot call method "buy" of service "inventory": the server threw OutOfStock: No A-1 left',
    );
    assert.equal(error.remoteName, "OutOfStock");
    assert.equal(error.remoteMessage, "No A-1 left");
    assert.deepEqual(error.fields, { sku: "A-1" });
    assert.match(String(error.stack), /checkoutFromTheTest/);
    assert.match(String(error.stack), /^RemoteError: Cannot call method "buy"/);
  }
  assert.ok(onConnection instanceof RemoteError);
  assert.match(String(onConnection.stack), /checkoutFromTheTest/);
  assert.equal(
    onConnection.message,
    `Cannot call method "buy" on ${HOST}:${server.addr.port}: the server threw OutOfStock: No A-1 left`,
  );
});

Deno.test("a remote stack the server exposes stays below the caller's stack", async () => {
  const server = serve({
    fail(): never {
      throw new RangeError("exposed");
    },
  }, { hostname: HOST, port: 0, exposeStack: true });
  await using channel = channelTo(server, {});
  const error = await within(
    checkoutFromTheTest(() => channel.call("fail", [])),
    10_000,
    "a call",
  ) as Error;
  await channel.close();
  await server.close();
  const stack = String(error.stack);
  assert.match(stack, /checkoutFromTheTest[\s\S]*--- remote stack ---/);
  assert.match(stack, /--- remote stack ---\nRangeError: exposed/);
});

Deno.test("a subclass sharing its parent's name is revived as the subclass when both are registered", async () => {
  const server = inventory();
  const warnings: string[] = [];
  const errors = new ErrorRegistry({
    onWarning: (message) => warnings.push(message),
  })
    .registerAs("Stock", StockError)
    .register(BackorderError);
  await using conn = await Connection.connect(
    { hostname: HOST, port: server.addr.port },
    { errors },
  );
  const backorder = await within(
    conn.call("order", [3], { timeout: 5000 }).catch((e) => e),
    10_000,
    "order 3",
  );
  const stock = await within(
    conn.call("order", [0], { timeout: 5000 }).catch((e) => e),
    10_000,
    "order 0",
  );
  conn.close();
  await server.close();
  assert.ok(backorder instanceof BackorderError, String(backorder));
  assert.equal(backorder.days, 3);
  assert.equal(backorder.name, "Stock");
  assert.ok(!(stock instanceof BackorderError) && stock instanceof StockError);
  assert.deepEqual(warnings, []);
});
