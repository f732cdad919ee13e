// Sends one bulk request through Microsoft's @azure/cosmos so that
// TestBulkRequestGoldenJS can record it. Usage: node capture-bulk.js ENDPOINT
"use strict";
const { CosmosClient, BulkOperationType } = require("@azure/cosmos");

const key = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

(async () => {
  const client = new CosmosClient({ endpoint: process.argv[2], key });
  const { database } = await client.databases.createIfNotExists({ id: "golden" });
  const { container } = await database.containers.createIfNotExists({ id: "bulk", partitionKey: { paths: ["/pk"], version: 2 } });
  await container.items.create({ id: "existing", pk: "b", n: 0 });
  const result = await container.items.executeBulkOperations([
    { operationType: BulkOperationType.Create, partitionKey: "a", resourceBody: { id: "created", pk: "a", n: 1 } },
    { operationType: BulkOperationType.Upsert, partitionKey: "b", resourceBody: { id: "upserted", pk: "b", n: 2 } },
    { operationType: BulkOperationType.Replace, id: "existing", partitionKey: "b", resourceBody: { id: "existing", pk: "b", n: 3 }, ifMatch: undefined },
    { operationType: BulkOperationType.Read, id: "existing", partitionKey: "b" },
    { operationType: BulkOperationType.Patch, id: "existing", partitionKey: "b", resourceBody: { operations: [{ op: "incr", path: "/n", value: 1 }] } },
    { operationType: BulkOperationType.Delete, id: "missing", partitionKey: "c" },
  ]);
  console.log(JSON.stringify(result.map((r) => (r.response ? r.response.statusCode : r.error.code))));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
