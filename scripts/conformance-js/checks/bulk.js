// Bulk: container.items.executeBulkOperations and the older
// container.items.bulk, across many partition keys and physical ranges with
// mixed operation types. Assertions from Microsoft's
// test/public/functional/item/executeBulkOperations.item.spec.ts and
// bulk.item.spec.ts.
"use strict";
const { BulkOperationType, PatchOperationType, StatusCodes } = require("@azure/cosmos");
const { check, assert } = require("../harness");

check("bulk: executeBulkOperations, CRUD of every type", async (ctx) => {
  const c = await ctx.container("bulk", { partitionKey: { paths: ["/key"] }, throughput: 1000 });
  for (const [id, key] of [["read", "A"], ["delete", "A"], ["replace", 5], ["patch", 5]]) await c.items.create({ id, key, class: "2010" });
  const result = await c.items.executeBulkOperations([
    { operationType: BulkOperationType.Create, partitionKey: "A", resourceBody: { id: "doc1", name: "sample", key: "A" } },
    { operationType: BulkOperationType.Upsert, partitionKey: "A", resourceBody: { id: "doc2", name: "other", key: "A" } },
    { operationType: BulkOperationType.Read, id: "read", partitionKey: "A" },
    { operationType: BulkOperationType.Delete, id: "delete", partitionKey: "A" },
    { operationType: BulkOperationType.Replace, id: "replace", partitionKey: 5, resourceBody: { id: "replace", key: 5, name: "nice" } },
    { operationType: BulkOperationType.Patch, id: "patch", partitionKey: 5, resourceBody: { operations: [{ op: PatchOperationType.add, path: "/great", value: "goodValue" }] } },
  ]);
  assert.equal(result.length, 6);
  assert.equal(result[0].response.resourceBody.name, "sample");
  assert.equal(result[0].response.statusCode, 201);
  assert.equal(result[1].response.resourceBody.name, "other");
  assert.equal(result[1].response.statusCode, 201);
  assert.equal(result[2].response.resourceBody.class, "2010");
  assert.equal(result[2].response.statusCode, 200);
  assert.equal(result[3].response.statusCode, 204);
  assert.equal(result[4].response.resourceBody.name, "nice");
  assert.equal(result[4].response.statusCode, 200);
  assert.equal(result[5].response.resourceBody.great, "goodValue");
  assert.equal(result[5].response.statusCode, 200);
});

check("bulk: 500 operations over 100 keys and two ranges, mixed types and failures", async (ctx) => {
  const c = await ctx.container("bulk", { throughput: 12000 });
  for (let i = 0; i < 50; i++) await c.items.create({ id: "pre" + i, pk: "k" + i, v: 0 });
  const ops = [];
  for (let i = 0; i < 400; i++) ops.push({ operationType: BulkOperationType.Create, partitionKey: "k" + (i % 100), resourceBody: { id: "n" + i, pk: "k" + (i % 100) } });
  for (let i = 0; i < 50; i++) ops.push({ operationType: BulkOperationType.Upsert, partitionKey: "k" + i, resourceBody: { id: "pre" + i, pk: "k" + i, v: 1 } });
  for (let i = 0; i < 25; i++) ops.push({ operationType: BulkOperationType.Create, partitionKey: "k" + i, resourceBody: { id: "n" + i, pk: "k" + i } }); // 409
  for (let i = 0; i < 25; i++) ops.push({ operationType: BulkOperationType.Read, id: "missing" + i, partitionKey: "k" + i }); // 404
  const result = await c.items.executeBulkOperations(ops);
  assert.equal(result.length, ops.length);
  const codes = result.map((r) => (r.response ? r.response.statusCode : r.error.code));
  assert.equal(codes.filter((s) => s === 201).length, 400);
  assert.equal(codes.filter((s) => s === 200).length, 50);
  assert.equal(codes.filter((s) => s === 409).length, 25);
  assert.equal(codes.filter((s) => s === 404).length, 25);
  const { resources } = await c.items.query("SELECT VALUE COUNT(1) FROM c").fetchAll();
  assert.deepEqual(resources, [450]);
});

check("bulk: an operation over 2 MB answers 413 alone", async (ctx) => {
  const c = await ctx.container("bulk");
  const result = await c.items.executeBulkOperations([
    { operationType: BulkOperationType.Create, partitionKey: "a", resourceBody: { id: "small", pk: "a" } },
    { operationType: BulkOperationType.Create, partitionKey: "a", resourceBody: { id: "big", pk: "a", v: "x".repeat(2 * 1024 * 1024 + 100) } },
  ]);
  assert.equal(result[0].response.statusCode, 201);
  assert.ok(result[1].error, "the big operation fails");
  assert.equal(result[1].error.code, StatusCodes.RequestEntityTooLarge);
});

check("bulk: container.items.bulk (legacy API)", async (ctx) => {
  const c = await ctx.container("bulk", { throughput: 12000 });
  await c.items.create({ id: "x", pk: "a" });
  const ops = [];
  for (let i = 0; i < 60; i++) ops.push({ operationType: BulkOperationType.Create, partitionKey: "p" + (i % 12), resourceBody: { id: "l" + i, pk: "p" + (i % 12) } });
  ops.push({ operationType: BulkOperationType.Read, id: "x", partitionKey: "a" });
  ops.push({ operationType: BulkOperationType.Delete, id: "x", partitionKey: "a" });
  const res = await c.items.bulk(ops);
  assert.equal(res.length, 62);
  assert.equal(res.filter((r) => r.statusCode === 201).length, 60);
  assert.equal(res[60].statusCode, 200);
  assert.equal(res[61].statusCode, 204);
});

check("bulk: operations retried after per-operation 429s from the admin fault API", async (ctx) => {
  const c = await ctx.container("bulk");
  const { id } = await ctx.admin("POST", "faults", { container: c.id, operations: ["bulk"], bulkOperationStatus: 429, count: 5, retryAfterMs: 10 });
  try {
    const ops = [];
    for (let i = 0; i < 20; i++) ops.push({ operationType: BulkOperationType.Create, partitionKey: "p" + (i % 4), resourceBody: { id: "t" + i, pk: "p" + (i % 4) } });
    const result = await c.items.executeBulkOperations(ops);
    assert.ok(result.every((r) => r.response && r.response.statusCode === 201), "every operation succeeds after its retries");
  } finally {
    await ctx.admin("DELETE", "faults/" + id).catch(() => {});
  }
});
