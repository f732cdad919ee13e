// Version 1 hashing: a container created without partitionKey.version (the
// SDK's default, and most older production containers) hashes keys with the
// version 1 scheme. The SDK hashes bulk operations on the client
// (src/utils/hashing/v1.ts) and sends each batch to the range it computes,
// so the emulator's range boundaries and item placement must be the
// service's, or every misrouted batch answers 410.
"use strict";
const { BulkOperationType, PatchOperationType, ChangeFeedStartFrom } = require("@azure/cosmos");
const { check, assert } = require("../harness");

// Keys on both sides of the two-range boundary, strings, numbers (whose
// encodings the SDK shortens, see internal/epk/v1.go) and null.
const keys = ["p0", 2, 0, -1, 5.5, null, ...Array.from({ length: 40 }, (_, i) => "k" + i)];
const idOf = (i) => "d" + i;

async function drain(iterator) {
  const items = [];
  for (let i = 0; i < 100; i++) {
    const res = await iterator.readNext();
    if (res.statusCode === 304) return items;
    items.push(...res.result);
  }
  throw new Error("the change feed did not reach 304");
}

check("version 1 hashing: the container has no version and two ranges at the service's boundary", async (ctx) => {
  const c = await ctx.container("v1", { throughput: 12000 });
  const { resource } = await c.read();
  assert.ok(resource.partitionKey.version === undefined || resource.partitionKey.version === 1, `version ${resource.partitionKey.version}`);
  const { resources } = await c.readPartitionKeyRanges().fetchAll();
  const bounds = resources.map((r) => [r.minInclusive, r.maxExclusive]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  // uint.MaxValue / 2 = 2147483647 as a binary-encoded number, as a real
  // version 1 container created with two partitions has it.
  assert.deepEqual(bounds, [["", "05C1DFFFFFFFFC"], ["05C1DFFFFFFFFC", "FF"]]);
});

check("version 1 hashing: bulk and point operations on both ranges", async (ctx) => {
  const c = await ctx.container("v1", { throughput: 12000 });
  const created = await c.items.executeBulkOperations(
    keys.map((pk, i) => ({ operationType: BulkOperationType.Create, partitionKey: pk, resourceBody: { id: idOf(i), pk, v: 0 } })),
  );
  const codes = (rs) => rs.map((r) => (r.response ? r.response.statusCode : r.error && r.error.code));
  assert.deepEqual(codes(created), keys.map(() => 201));

  // Both ranges hold items, and together every item once.
  const ranges = await c.getFeedRanges();
  assert.equal(ranges.length, 2);
  const perRange = [];
  for (const r of ranges) perRange.push((await drain(c.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning(r), maxItemCount: 100 }))).map((d) => d.id));
  assert.ok(perRange.every((ids) => ids.length > 0), `items per range: ${perRange.map((ids) => ids.length)}`);
  assert.deepEqual(perRange.flat().sort(), keys.map((_, i) => idOf(i)).sort());

  // Every operation type through bulk, on every key.
  const ops = keys.map((pk, i) => {
    switch (i % 5) {
      case 0: return { operationType: BulkOperationType.Read, id: idOf(i), partitionKey: pk };
      case 1: return { operationType: BulkOperationType.Upsert, partitionKey: pk, resourceBody: { id: idOf(i), pk, v: 1 } };
      case 2: return { operationType: BulkOperationType.Replace, id: idOf(i), partitionKey: pk, resourceBody: { id: idOf(i), pk, v: 2 } };
      case 3: return { operationType: BulkOperationType.Patch, id: idOf(i), partitionKey: pk, resourceBody: { operations: [{ op: PatchOperationType.set, path: "/v", value: 3 }] } };
      default: return { operationType: BulkOperationType.Delete, id: idOf(i), partitionKey: pk };
    }
  });
  const mixed = await c.items.executeBulkOperations(ops);
  assert.deepEqual(codes(mixed), keys.map((_, i) => [200, 200, 200, 200, 204][i % 5]));

  // The legacy bulk API routes the same way.
  const legacy = await c.items.bulk(keys.map((pk, i) => ({ operationType: BulkOperationType.Upsert, partitionKey: pk, resourceBody: { id: idOf(i), pk, v: 4 } })));
  assert.ok(legacy.every((r) => r.statusCode === 200 || r.statusCode === 201), JSON.stringify(legacy.map((r) => r.statusCode)));

  // Point operations on keys of both ranges.
  for (const i of [0, 1, 5, 6, 10, 11]) {
    const pk = keys[i];
    const item = c.item(idOf(i), pk);
    assert.equal((await item.read()).resource.v, 4);
    await item.replace({ id: idOf(i), pk, v: 5 });
    await item.patch([{ op: PatchOperationType.incr, path: "/v", value: 1 }]);
    assert.equal((await item.read()).resource.v, 6);
    await item.delete();
    assert.equal((await item.read()).statusCode, 404);
  }
  const { resources } = await c.items.query("SELECT VALUE COUNT(1) FROM c").fetchAll();
  assert.deepEqual(resources, [keys.length - 6]);
});
