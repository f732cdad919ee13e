// The all-versions-and-deletes change feed through the SDK's
// ChangeFeedMode.AllVersionsAndDeletes, modelled on Microsoft's
// test/public/functional/changefeed/ all-versions-and-deletes tests: a
// container with a ChangeFeedPolicy, start from now or a continuation,
// creates, replaces, deletes and TTL expiries with their metadata, feed
// ranges across a split.
"use strict";
const { ChangeFeedStartFrom, ChangeFeedMode, ChangeFeedPolicy, ChangeFeedRetentionTimeSpan } = require("@azure/cosmos");
const { check, assert } = require("../harness");

const avad = (c, start) => c.items.getChangeFeedIterator({ changeFeedStartFrom: start, changeFeedMode: ChangeFeedMode.AllVersionsAndDeletes, maxItemCount: 50 });

async function drain(iterator) {
  const items = [];
  for (let i = 0; i < 100; i++) {
    const res = await iterator.readNext();
    if (res.statusCode === 304) return { items, token: res.continuationToken };
    items.push(...res.result);
  }
  throw new Error("the change feed did not reach 304");
}

const policy = () => new ChangeFeedPolicy(ChangeFeedRetentionTimeSpan.fromMinutes(10));

check("all versions and deletes: refused with 400 on a container without a change feed policy", async (ctx) => {
  const c = await ctx.container("avad");
  const err = await avad(c, ChangeFeedStartFrom.Now()).readNext().catch((e) => e);
  assert.equal(err.code, 400);
});

check("all versions and deletes: the container's changeFeedPolicy reads back", async (ctx) => {
  const c = await ctx.container("avad", { changeFeedPolicy: policy() });
  const { resource } = await c.read();
  assert.deepEqual(resource.changeFeedPolicy, { retentionDuration: 10 });
});

check("all versions and deletes: creates, replaces and deletes from now, with metadata", async (ctx) => {
  const c = await ctx.container("avad", { changeFeedPolicy: policy() });
  await c.items.create({ id: "before", pk: "a" });
  const it = avad(c, ChangeFeedStartFrom.Now());
  assert.equal((await drain(it)).items.length, 0, "nothing before now");
  await c.items.create({ id: "1", pk: "a", v: 1 });
  await c.item("1", "a").replace({ id: "1", pk: "a", v: 2 });
  await c.item("1", "a").delete();
  const { items } = await drain(it);
  assert.deepEqual(items.map((x) => x.metadata.operationType), ["create", "replace", "delete"]);
  const [create, replace, del] = items;
  assert.equal(create.current.v, 1);
  assert.equal(replace.current.v, 2);
  assert.equal(replace.metadata.previousImageLSN, create.metadata.lsn);
  assert.equal(del.previous.v, 2);
  assert.equal(del.metadata.id, "1");
  assert.deepEqual(del.metadata.partitionKey, { pk: "a" });
  assert.equal(del.metadata.timeToLiveExpired, false);
  assert.ok(create.metadata.lsn < replace.metadata.lsn && replace.metadata.lsn < del.metadata.lsn);
  assert.ok(create.metadata.crts > 0);
});

check("all versions and deletes: resume from a continuation token", async (ctx) => {
  const c = await ctx.container("avad", { changeFeedPolicy: policy(), throughput: 12000 });
  const first = await drain(avad(c, ChangeFeedStartFrom.Now()));
  for (let i = 0; i < 10; i++) await c.items.create({ id: "i" + i, pk: "k" + i });
  const second = await drain(avad(c, ChangeFeedStartFrom.Continuation(first.token)));
  assert.equal(second.items.length, 10);
  for (let i = 0; i < 4; i++) await c.item("i" + i, "k" + i).delete();
  const third = await drain(avad(c, ChangeFeedStartFrom.Continuation(second.token)));
  assert.equal(third.items.length, 4);
  assert.ok(third.items.every((x) => x.metadata.operationType === "delete" && x.previous && x.metadata.id.startsWith("i")));
});

check("all versions and deletes: starting from the beginning is refused with 400", async (ctx) => {
  const c = await ctx.container("avad", { changeFeedPolicy: policy() });
  const err = await avad(c, ChangeFeedStartFrom.Beginning()).readNext().catch((e) => e);
  assert.equal(err.code, 400);
});

check("all versions and deletes: TTL expiries are deletes with timeToLiveExpired", async (ctx) => {
  const c = await ctx.container("avad", { changeFeedPolicy: policy(), defaultTtl: -1 });
  const it = avad(c, ChangeFeedStartFrom.Now());
  await drain(it);
  await c.items.create({ id: "short", pk: "a", ttl: 1 });
  await c.items.create({ id: "long", pk: "a" });
  await new Promise((r) => setTimeout(r, 2200));
  const { items } = await drain(it);
  const del = items.find((x) => x.metadata.operationType === "delete");
  assert.ok(del, "an expiry appears as a delete");
  assert.equal(del.metadata.id, "short");
  assert.equal(del.metadata.timeToLiveExpired, true);
  assert.equal((await c.item("short", "a").read()).statusCode, 404);
});

check("all versions and deletes: feed ranges keep every change across a split", async (ctx) => {
  const c = await ctx.container("avad", { changeFeedPolicy: policy() });
  const it = avad(c, ChangeFeedStartFrom.Now());
  await drain(it);
  for (let i = 0; i < 10; i++) await c.items.create({ id: "a" + i, pk: "k" + i });
  await ctx.split(c, "0");
  await new Promise((r) => setTimeout(r, 300));
  for (let i = 0; i < 10; i++) await c.item("a" + i, "k" + i).delete();
  const { items } = await drain(it);
  assert.equal(items.filter((x) => x.metadata.operationType === "create").length, 10);
  assert.equal(items.filter((x) => x.metadata.operationType === "delete").length, 10);
  const ranges = await c.getFeedRanges();
  assert.equal(ranges.length, 2);
});
