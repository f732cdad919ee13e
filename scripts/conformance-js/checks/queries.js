// Queries: single- and cross-partition, through the SDK's query plans.
// Expected results are computed here from the data written, as Microsoft's
// test/public/functional/query.spec.ts and aggregateQuery tests do.
"use strict";
const { check, assert } = require("../harness");

// seeded returns a container of 10,000 RU/s (two physical partitions) with
// 40 items over 8 partition keys.
async function seeded(ctx) {
  const c = await ctx.container("q", { throughput: 12000 });
  const items = [];
  for (let i = 0; i < 40; i++) {
    const it = { id: "i" + String(i).padStart(2, "0"), pk: "p" + (i % 8), n: i, cat: "c" + (i % 3) };
    if (i % 10 === 0) delete it.cat;
    items.push(it);
    await c.items.create(it);
  }
  return { c, items };
}

let shared;
async function data(ctx) {
  if (!shared) shared = await seeded(ctx);
  return shared;
}

async function all(c, q, opts) {
  const { resources } = await c.items.query(q, opts).fetchAll();
  return resources;
}

check("queries: container spans more than one partition key range", async (ctx) => {
  const { c } = await data(ctx);
  const ranges = await c.getFeedRanges();
  assert.ok(ranges.length >= 2, `want at least 2 feed ranges, got ${ranges.length}`);
});

check("queries: single partition with partitionKey option and parameters", async (ctx) => {
  const { c, items } = await data(ctx);
  const got = await all(c, { query: "SELECT * FROM c WHERE c.n >= @min", parameters: [{ name: "@min", value: 10 }] }, { partitionKey: "p3" });
  const want = items.filter((i) => i.pk === "p3" && i.n >= 10);
  assert.deepEqual(got.map((d) => d.id).sort(), want.map((d) => d.id).sort());
});

check("queries: cross-partition filter and projection", async (ctx) => {
  const { c, items } = await data(ctx);
  const got = await all(c, "SELECT c.id, c.n FROM c WHERE c.n % 2 = 0");
  assert.equal(got.length, items.filter((i) => i.n % 2 === 0).length);
  assert.deepEqual(Object.keys(got[0]).sort(), ["id", "n"]);
});

check("queries: ORDER BY ascending and descending across partitions", async (ctx) => {
  const { c, items } = await data(ctx);
  const asc = await all(c, "SELECT VALUE c.n FROM c ORDER BY c.n");
  assert.deepEqual(asc, items.map((i) => i.n).sort((a, b) => a - b));
  const desc = await all(c, "SELECT c.id FROM c ORDER BY c.id DESC");
  assert.deepEqual(desc.map((d) => d.id), items.map((i) => i.id).sort().reverse());
});

check("queries: ORDER BY paged with continuation tokens", async (ctx) => {
  const { c, items } = await data(ctx);
  const it = c.items.query("SELECT * FROM c ORDER BY c.n", { maxItemCount: 7 });
  const seen = [];
  let pages = 0;
  while (it.hasMoreResults()) {
    const page = await it.fetchNext();
    if (page.resources) seen.push(...page.resources.map((d) => d.n));
    if (++pages > 50) break;
  }
  assert.deepEqual(seen, items.map((i) => i.n).sort((a, b) => a - b));
  assert.ok(pages >= 6, `want several pages of at most 7, got ${pages}`);
});

check("queries: TOP with ORDER BY", async (ctx) => {
  const { c } = await data(ctx);
  const got = await all(c, "SELECT TOP 5 VALUE c.n FROM c ORDER BY c.n DESC");
  assert.deepEqual(got, [39, 38, 37, 36, 35]);
});

check("queries: OFFSET LIMIT across partitions", async (ctx) => {
  const { c, items } = await data(ctx);
  const got = await all(c, "SELECT VALUE c.n FROM c ORDER BY c.n OFFSET 10 LIMIT 5");
  assert.deepEqual(got, [10, 11, 12, 13, 14]);
  const unordered = await all(c, "SELECT * FROM c OFFSET 3 LIMIT 4");
  assert.equal(unordered.length, 4);
  assert.ok(unordered.every((d) => items.some((i) => i.id === d.id)));
});

check("queries: VALUE COUNT, SUM, MIN, MAX, AVG across partitions", async (ctx) => {
  const { c, items } = await data(ctx);
  const ns = items.map((i) => i.n);
  const sum = ns.reduce((a, b) => a + b, 0);
  assert.deepEqual(await all(c, "SELECT VALUE COUNT(1) FROM c"), [items.length]);
  assert.deepEqual(await all(c, "SELECT VALUE COUNT(c.cat) FROM c"), [items.filter((i) => i.cat).length]);
  assert.deepEqual(await all(c, "SELECT VALUE SUM(c.n) FROM c"), [sum]);
  assert.deepEqual(await all(c, "SELECT VALUE MIN(c.n) FROM c"), [0]);
  assert.deepEqual(await all(c, "SELECT VALUE MAX(c.n) FROM c"), [39]);
  assert.deepEqual(await all(c, "SELECT VALUE AVG(c.n) FROM c"), [sum / ns.length]);
  assert.deepEqual(await all(c, "SELECT VALUE COUNT(1) FROM c WHERE c.pk = 'p1'"), [items.filter((i) => i.pk === "p1").length]);
});

check("queries: aggregates without VALUE", async (ctx) => {
  const { c, items } = await data(ctx);
  const got = await all(c, "SELECT COUNT(1) AS n, MAX(c.n) AS hi FROM c");
  assert.deepEqual(got, [{ n: items.length, hi: 39 }]);
});

check("queries: DISTINCT, unordered and ordered", async (ctx) => {
  const { c, items } = await data(ctx);
  const cats = [...new Set(items.filter((i) => i.cat).map((i) => i.cat))].sort();
  const got = await all(c, "SELECT DISTINCT VALUE c.cat FROM c");
  assert.deepEqual(got.sort(), cats);
  const ordered = await all(c, "SELECT DISTINCT VALUE c.pk FROM c ORDER BY c.pk");
  assert.deepEqual(ordered, [...new Set(items.map((i) => i.pk))].sort());
});

check("queries: GROUP BY with COUNT and SUM", async (ctx) => {
  const { c, items } = await data(ctx);
  const got = await all(c, "SELECT c.pk, COUNT(1) AS n, SUM(c.n) AS total FROM c GROUP BY c.pk");
  const want = {};
  for (const i of items) {
    want[i.pk] = want[i.pk] || { pk: i.pk, n: 0, total: 0 };
    want[i.pk].n++;
    want[i.pk].total += i.n;
  }
  got.sort((a, b) => a.pk.localeCompare(b.pk));
  assert.deepEqual(got, Object.values(want).sort((a, b) => a.pk.localeCompare(b.pk)));
  const values = await all(c, "SELECT VALUE c.pk FROM c GROUP BY c.pk");
  assert.equal(values.length, 8);
});

check("queries: getQueryPlan returns the gateway's plan", async (ctx) => {
  const { c } = await data(ctx);
  const plan = (await c.getQueryPlan("SELECT TOP 3 * FROM c ORDER BY c.n DESC")).result;
  assert.equal(plan.partitionedQueryExecutionInfoVersion, 2);
  assert.equal(plan.queryInfo.top, 3);
  assert.deepEqual(plan.queryInfo.orderBy, ["Descending"]);
  assert.ok(plan.queryInfo.rewrittenQuery.includes("{documentdb-formattableorderbyquery-filter}"));
  assert.deepEqual(plan.queryRanges, [{ min: "", max: "FF", isMinInclusive: true, isMaxInclusive: false }]);
  assert.equal(plan.Documents, undefined, "a plan request is not executed");
});
