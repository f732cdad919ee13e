// Items: point operations, patch, hierarchical keys. Assertions follow
// Microsoft's test/public/functional/item/item.spec.ts where it has them.
"use strict";
const { PatchOperationType, PartitionKeyKind, PartitionKeyDefinitionVersion } = require("@azure/cosmos");
const { check, expectCode, assert } = require("../harness");

check("items: create, read, replace, upsert, delete", async (ctx) => {
  const c = await ctx.container("items");
  const created = await c.items.create({ id: "1", pk: "a", n: 1 });
  assert.equal(created.statusCode, 201);
  assert.equal(created.resource.n, 1);
  assert.ok(created.etag, "create returns an etag");
  const read = await c.item("1", "a").read();
  assert.equal(read.statusCode, 200);
  assert.equal(read.resource.id, "1");
  assert.ok(read.resource._rid && read.resource._ts && read.resource._etag, "system properties");
  const replaced = await c.item("1", "a").replace({ id: "1", pk: "a", n: 2 });
  assert.equal(replaced.statusCode, 200);
  assert.notEqual(replaced.etag, created.etag);
  const upserted = await c.items.upsert({ id: "2", pk: "a", n: 3 });
  assert.equal(upserted.statusCode, 201);
  const upserted2 = await c.items.upsert({ id: "2", pk: "a", n: 4 });
  assert.equal(upserted2.statusCode, 200);
  const del = await c.item("1", "a").delete();
  assert.equal(del.statusCode, 204);
  const missing = await c.item("1", "a").read();
  assert.equal(missing.statusCode, 404, "a read of a deleted item answers 404");
  assert.ok(read.requestCharge > 0, "request charge reported");
});

check("items: conflict, precondition, wrong partition key", async (ctx) => {
  const c = await ctx.container("items");
  const { etag } = await c.items.create({ id: "1", pk: "a" });
  await expectCode(() => c.items.create({ id: "1", pk: "a" }), 409, "duplicate create");
  await c.item("1", "a").replace({ id: "1", pk: "a", v: 1 }, { accessCondition: { type: "IfMatch", condition: etag } });
  await expectCode(
    () => c.item("1", "a").replace({ id: "1", pk: "a", v: 2 }, { accessCondition: { type: "IfMatch", condition: etag } }),
    412,
    "replace with a stale etag",
  );
  await expectCode(() => c.item("1", "b").replace({ id: "1", pk: "a" }), 400, "body key differs from the request's key");
});

check("items: patch with an array of operations and a condition", async (ctx) => {
  const c = await ctx.container("items");
  await c.items.create({ id: "p", pk: "a", count: 5, name: "old", drop: true });
  const res = await c.item("p", "a").patch([
    { op: PatchOperationType.add, path: "/added", value: "v" },
    { op: PatchOperationType.set, path: "/name", value: "new" },
    { op: PatchOperationType.incr, path: "/count", value: 3 },
    { op: PatchOperationType.remove, path: "/drop" },
  ]);
  assert.equal(res.statusCode, 200);
  assert.equal(res.resource.added, "v");
  assert.equal(res.resource.name, "new");
  assert.equal(res.resource.count, 8);
  assert.equal(res.resource.drop, undefined);
  const cond = await c.item("p", "a").patch({ condition: "from c where c.count = 8", operations: [{ op: "set", path: "/cond", value: 1 }] });
  assert.equal(cond.resource.cond, 1);
  await expectCode(
    () => c.item("p", "a").patch({ condition: "from c where c.count = 0", operations: [{ op: "set", path: "/x", value: 1 }] }),
    412,
    "patch whose condition is false",
  );
});

check("items: hierarchical partition key CRUD and readAll", async (ctx) => {
  const c = await ctx.container("hpk", {
    partitionKey: { paths: ["/tenant", "/user"], kind: PartitionKeyKind.MultiHash, version: PartitionKeyDefinitionVersion.V2 },
  });
  for (let i = 0; i < 6; i++) await c.items.create({ id: "i" + i, tenant: "t" + (i % 2), user: "u" + i });
  const r = await c.item("i3", ["t1", "u3"]).read();
  assert.equal(r.statusCode, 200);
  assert.equal(r.resource.user, "u3");
  await c.item("i3", ["t1", "u3"]).delete();
  const { resources } = await c.items.readAll().fetchAll();
  assert.equal(resources.length, 5);
});

check("items: item over 2 MB refused with 413", async (ctx) => {
  const c = await ctx.container("items");
  await expectCode(() => c.items.create({ id: "big", pk: "a", blob: "x".repeat(2 * 1024 * 1024 + 10) }), 413, "2 MB item");
});
