// The all-versions-and-deletes change feed.
"use strict";
const { ChangeFeedStartFrom, ChangeFeedMode } = require("@azure/cosmos");
const { check, assert } = require("../harness");

check("all versions and deletes: refused with 400 on a container without a change feed policy", async (ctx) => {
  const c = await ctx.container("avad");
  const it = c.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Now(), changeFeedMode: ChangeFeedMode.AllVersionsAndDeletes });
  const err = await it.readNext().catch((e) => e);
  assert.equal(err.code, 400);
});
