// The latest-version change feed through getChangeFeedIterator: start from
// the beginning, now, a time or a continuation; whole container, one feed
// range, one partition key, a hierarchical key prefix. Modelled on
// Microsoft's test/public/functional/changeFeedIterator.spec.ts.
"use strict";
const { ChangeFeedStartFrom, PartitionKeyKind, PartitionKeyDefinitionVersion } = require("@azure/cosmos");
const { check, assert } = require("../harness");

// drain reads an iterator until the service answers 304 (nothing new) and
// returns the items and the last continuation token.
async function drain(iterator, limit = 100) {
  const items = [];
  let token;
  for (let i = 0; i < limit; i++) {
    const res = await iterator.readNext();
    token = res.continuationToken;
    if (res.statusCode === 304) return { items, token };
    items.push(...res.result);
  }
  throw new Error("the change feed did not reach 304");
}

const feed = (c, start, extra = {}) => c.items.getChangeFeedIterator({ changeFeedStartFrom: start, maxItemCount: 10, ...extra });

check("change feed: from the beginning, every item once at its latest version", async (ctx) => {
  const c = await ctx.container("cf", { throughput: 12000 });
  for (let i = 0; i < 25; i++) await c.items.create({ id: "i" + i, pk: "p" + (i % 5), v: 1 });
  await c.item("i3", "p3").replace({ id: "i3", pk: "p3", v: 2 });
  const { items } = await drain(feed(c, ChangeFeedStartFrom.Beginning()));
  assert.equal(items.length, 25);
  assert.equal(new Set(items.map((d) => d.id)).size, 25);
  assert.equal(items.find((d) => d.id === "i3").v, 2);
  assert.ok(items.every((d) => d._lsn !== undefined), "feed documents carry _lsn");
});

check("change feed: from now sees only later changes", async (ctx) => {
  const c = await ctx.container("cf");
  await c.items.create({ id: "old", pk: "a" });
  const it = feed(c, ChangeFeedStartFrom.Now());
  const first = await drain(it);
  assert.equal(first.items.length, 0);
  await c.items.create({ id: "new", pk: "b" });
  const second = await drain(it);
  assert.deepEqual(second.items.map((d) => d.id), ["new"]);
});

check("change feed: from a point in time", async (ctx) => {
  const c = await ctx.container("cf");
  await c.items.create({ id: "before", pk: "a" });
  await new Promise((r) => setTimeout(r, 1100));
  const t = new Date();
  await new Promise((r) => setTimeout(r, 1100));
  await c.items.create({ id: "after", pk: "a" });
  const { items } = await drain(feed(c, ChangeFeedStartFrom.Time(t)));
  assert.deepEqual(items.map((d) => d.id), ["after"]);
});

check("change feed: resume from a continuation token", async (ctx) => {
  const c = await ctx.container("cf", { throughput: 12000 });
  for (let i = 0; i < 12; i++) await c.items.create({ id: "a" + i, pk: "p" + i });
  const first = await drain(feed(c, ChangeFeedStartFrom.Beginning()));
  assert.equal(first.items.length, 12);
  for (let i = 0; i < 5; i++) await c.items.create({ id: "b" + i, pk: "p" + i });
  const resumed = await drain(feed(c, ChangeFeedStartFrom.Continuation(first.token)));
  assert.deepEqual(resumed.items.map((d) => d.id).sort(), ["b0", "b1", "b2", "b3", "b4"]);
});

check("change feed: per feed range, the ranges together hold every item once", async (ctx) => {
  const c = await ctx.container("cf", { throughput: 12000 });
  for (let i = 0; i < 30; i++) await c.items.create({ id: "i" + i, pk: "k" + i });
  const ranges = await c.getFeedRanges();
  assert.ok(ranges.length >= 2);
  const seen = [];
  for (const r of ranges) {
    const { items } = await drain(feed(c, ChangeFeedStartFrom.Beginning(r)));
    seen.push(...items.map((d) => d.id));
  }
  assert.equal(seen.length, 30);
  assert.equal(new Set(seen).size, 30);
});

check("change feed: one partition key", async (ctx) => {
  const c = await ctx.container("cf");
  for (let i = 0; i < 12; i++) await c.items.create({ id: "i" + i, pk: "p" + (i % 3) });
  const { items } = await drain(feed(c, ChangeFeedStartFrom.Beginning("p1")));
  assert.equal(items.length, 4);
  assert.ok(items.every((d) => d.pk === "p1"));
});

check("change feed: hierarchical key prefix and full key", async (ctx) => {
  const c = await ctx.container("cfh", {
    partitionKey: { paths: ["/tenant", "/user"], kind: PartitionKeyKind.MultiHash, version: PartitionKeyDefinitionVersion.V2 },
  });
  for (let i = 0; i < 12; i++) await c.items.create({ id: "i" + i, tenant: ["a", "b", "c"][i % 3], user: "u" + (i % 2) });
  const prefix = await drain(feed(c, ChangeFeedStartFrom.Beginning(["a"])));
  assert.equal(prefix.items.length, 4, "prefix [a] holds 4 of the 12 items");
  assert.ok(prefix.items.every((d) => d.tenant === "a"));
  const full = await drain(feed(c, ChangeFeedStartFrom.Beginning(["a", "u0"])));
  assert.ok(full.items.length === 2 && full.items.every((d) => d.tenant === "a" && d.user === "u0"));
});
