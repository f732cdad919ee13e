// 429s: the SDK honours x-ms-retry-after-ms and retries, whether the 429
// comes from an injected fault or from a spent partition RU budget.
"use strict";
const { CosmosClient } = require("@azure/cosmos");
const { check, assert } = require("../harness");

check("throttling: injected 429s are retried", async (ctx) => {
  const c = await ctx.container("thr");
  const { id } = await ctx.admin("POST", "faults", { container: c.id, status: 429, count: 3, retryAfterMs: 20, operations: ["write"] });
  try {
    const res = await c.items.create({ id: "x", pk: "a" });
    assert.equal(res.statusCode, 201);
    const faults = await ctx.admin("GET", "faults");
    assert.ok(!faults[id], "the fault fired all 3 times");
  } finally {
    await ctx.admin("DELETE", "faults/" + id).catch(() => {});
  }
});

check("throttling: a spent RU budget answers 429 and the SDK's retries get through", async (ctx) => {
  const created = await ctx.container("thr", { throughput: 400 });
  // 60 writes at once share 400 RU/s for about 7 s, and which of them wins
  // each second depends on the machine's load. The SDK's default of 9 retries
  // within 30 s can run out for an unlucky one, so this client may retry for
  // as long as the check allows: what is checked is that 429s came and that
  // the SDK's retries (honouring x-ms-retry-after-ms) got every write through.
  const patient = new CosmosClient({
    endpoint: ctx.endpoint,
    key: ctx.key,
    connectionPolicy: { retryOptions: { maxRetryAttemptCount: 1000, maxWaitTimeInSeconds: 110 } },
  });
  const c = patient.database(ctx.dbId).container(created.id);
  const big = "x".repeat(8 * 1024);
  const writes = [];
  for (let i = 0; i < 60; i++) writes.push(c.items.create({ id: "w" + i, pk: "p" + (i % 3), big }));
  const res = await Promise.all(writes);
  assert.ok(res.every((r) => r.statusCode === 201));
  const metrics = await ctx.admin("GET", "metrics");
  const m = metrics.find((x) => x.database === ctx.dbId && x.container === c.id);
  assert.ok(m.throttled > 0, `want some 429s at 400 RU/s, got ${m.throttled}`);
}, { timeoutMs: 120000 });
