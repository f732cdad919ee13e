// Splits through the admin API: the SDK re-routes on 410/1002 and nothing
// is lost or duplicated.
"use strict";
const { ChangeFeedStartFrom, BulkOperationType } = require("@azure/cosmos");
const { check, assert } = require("../harness");

async function drain(iterator) {
  const items = [];
  for (let i = 0; i < 200; i++) {
    const res = await iterator.readNext();
    if (res.statusCode === 304) return items;
    items.push(...res.result);
  }
  throw new Error("the change feed did not reach 304");
}

check("splits: feed ranges, queries and change feed continue across a split", async (ctx) => {
  const c = await ctx.container("split");
  for (let i = 0; i < 30; i++) await c.items.create({ id: "a" + i, pk: "k" + i });
  const it = c.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning(), maxItemCount: 7 });
  const first = await it.readNext();
  assert.equal(first.result.length, 7);
  await ctx.split(c, "0");
  await new Promise((r) => setTimeout(r, 300));
  const ranges = await c.getFeedRanges();
  assert.equal(ranges.length, 2, "two feed ranges after the split");
  for (let i = 0; i < 10; i++) await c.items.create({ id: "b" + i, pk: "k" + i });
  const rest = await drain(it);
  const ids = [...first.result, ...rest].map((d) => d.id);
  assert.equal(ids.length, 40);
  assert.equal(new Set(ids).size, 40);
  const { resources } = await c.items.query("SELECT VALUE COUNT(1) FROM c").fetchAll();
  assert.deepEqual(resources, [40]);
  const ordered = (await c.items.query("SELECT VALUE c.id FROM c ORDER BY c.id").fetchAll()).resources;
  assert.deepEqual(ordered, [...ids].sort());
});

check("splits: bulk after a split re-routes to the new ranges", async (ctx) => {
  const c = await ctx.container("split");
  await c.items.executeBulkOperations([{ operationType: BulkOperationType.Create, partitionKey: "warm", resourceBody: { id: "warm", pk: "warm" } }]);
  await ctx.split(c, "0");
  await new Promise((r) => setTimeout(r, 300));
  const ops = [];
  for (let i = 0; i < 40; i++) ops.push({ operationType: BulkOperationType.Create, partitionKey: "s" + i, resourceBody: { id: "s" + i, pk: "s" + i } });
  const result = await c.items.executeBulkOperations(ops);
  assert.ok(result.every((r) => r.response && r.response.statusCode === 201), JSON.stringify(result.filter((r) => !r.response).map((r) => r.error && r.error.code)));
});
