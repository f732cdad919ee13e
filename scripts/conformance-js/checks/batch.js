// Transactional batch: Microsoft's test/public/functional/item/batch.item.spec.ts.
"use strict";
const { BulkOperationType } = require("@azure/cosmos");
const { check, assert } = require("../harness");

check("batch: mixed operations in one logical partition", async (ctx) => {
  const c = await ctx.container("batch");
  await c.items.create({ id: "r", pk: "a", v: 1 });
  await c.items.create({ id: "d", pk: "a" });
  const res = await c.items.batch(
    [
      { operationType: BulkOperationType.Create, resourceBody: { id: "n", pk: "a" } },
      { operationType: BulkOperationType.Upsert, resourceBody: { id: "u", pk: "a" } },
      { operationType: BulkOperationType.Read, id: "r" },
      { operationType: BulkOperationType.Delete, id: "d" },
      { operationType: BulkOperationType.Replace, id: "r", resourceBody: { id: "r", pk: "a", v: 2 } },
      { operationType: BulkOperationType.Patch, id: "r", resourceBody: { operations: [{ op: "incr", path: "/v", value: 1 }] } },
    ],
    "a",
  );
  assert.equal(res.code, 200);
  assert.deepEqual(res.result.map((r) => r.statusCode), [201, 201, 200, 204, 200, 200]);
  assert.equal((await c.item("r", "a").read()).resource.v, 3);
});

check("batch: a failing operation rolls the batch back (207, 424)", async (ctx) => {
  const c = await ctx.container("batch");
  await c.items.create({ id: "dup", pk: "a" });
  const res = await c.items.batch(
    [
      { operationType: BulkOperationType.Create, resourceBody: { id: "new", pk: "a" } },
      { operationType: BulkOperationType.Create, resourceBody: { id: "dup", pk: "a" } },
    ],
    "a",
  );
  assert.equal(res.code, 207);
  assert.deepEqual(res.result.map((r) => r.statusCode), [424, 409]);
  assert.equal((await c.item("new", "a").read()).statusCode, 404, "the first create was rolled back");
});
