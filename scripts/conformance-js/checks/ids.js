// Item ids in request paths, from Microsoft's
// test/public/functional/item/itemIdEncoding.spec.ts: every compute-gateway
// (CGW) scenario with its assertions, and the routing-gateway (RGW)
// scenarios on which that file and the Go SDK's
// TestItemIdEncodingRoutingGW agree.
"use strict";
const { check, assert } = require("../harness");

async function roundTrip(container, id) {
  const created = await container.items.create({ id, pk: id });
  assert.equal(created.statusCode, 201);
  assert.equal(created.resource.id, id);
  const read = await container.item(id, id).read();
  assert.equal(read.statusCode, 200, `read ${JSON.stringify(id)}`);
  assert.equal(read.resource.id, id);
  assert.equal(read.resource.pk, id);
  const replaced = await container.item(id, id).replace({ id, pk: id });
  assert.equal(replaced.statusCode, 200, `replace ${JSON.stringify(id)}`);
  const deleted = await container.item(id, id).delete();
  assert.equal(deleted.statusCode, 204, `delete ${JSON.stringify(id)}`);
}

const base64Id = ("BQE1D3PdG4N4bzU9TKaCIM3qc0TVcZ2/Y3jnsRfwdHC1ombkX3F1dot/SG0/UTq9AbgdX3" + "kOWoP6qL6lJqWeKgV3zwWWPZO/t5X0ehJzv9LGkWld07LID2rhWhGT6huBM6Q=").replace(/\//g, "-");
const computeIds = ["Test", "This is a test", " Test", "   Test", "Test ", "Test   ", "WithUnicode鱀", "WithAllowedSpecial,=.:~+-@()^${}[]!_Chars", base64Id,
  "IdEndingWithPercentEncodedWhitespace%20", "WithPercentEncodedSpecialChar%E9%B1%80", "Disallowed?Chars", "With\rCarriageReturn", "With\tTab", "With\nLineFeed"];

check("ids: compute gateway serves every id of Microsoft's id-encoding test", async (ctx) => {
  const { database } = await ctx.computeClient.databases.createIfNotExists({ id: ctx.dbId });
  const { container } = await database.containers.create({ id: "ids-cgw", partitionKey: { paths: ["/pk"] } });
  for (const id of computeIds) await roundTrip(container, id);
});

check("ids: the SDK refuses '/', '\\\\' and '#' in ids before sending", async (ctx) => {
  const c = await ctx.container("ids");
  for (const id of ["Disallowed/Chars", "Disallowed\\Chars", "Disallowed#Chars"]) {
    try {
      await c.items.create({ id, pk: id });
      assert.fail(`create ${id} succeeded`);
    } catch (err) {
      assert.equal(err.message, "Id contains illegal chars.");
    }
  }
});

check("ids: routing gateway serves plain, spaced, unicode, special and '?' ids", async (ctx) => {
  const c = await ctx.container("ids");
  for (const id of ["Test", "This is a test", " Test", "WithUnicode鱀", "WithAllowedSpecial,=.:~+-@()^${}[]!_Chars", base64Id, "Disallowed?Chars"]) await roundTrip(c, id);
});

check("ids: routing gateway answers 401 for a trailing space (TestItemIdEncodingRoutingGW)", async (ctx) => {
  const c = await ctx.container("ids");
  const created = await c.items.create({ id: "Test ", pk: "Test " });
  assert.equal(created.statusCode, 201);
  const read = await c.item("Test ", "Test ").read().catch((e) => e);
  assert.equal(read.code, 401);
});
