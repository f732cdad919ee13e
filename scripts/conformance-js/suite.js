// The JavaScript conformance suite: Microsoft's @azure/cosmos SDK, through
// its public API, against `rekey emulator`. scripts/conformance-js.sh starts
// the emulator and runs this file; by hand:
//
//   REKEY_ENDPOINT=https://127.0.0.1:8081/ REKEY_COMPUTE_ENDPOINT=https://127.0.0.1:8903/ \
//   NODE_TLS_REJECT_UNAUTHORIZED=0 node suite.js [name-filter]
//
// The emulator must run with --admin: the split and fault checks use the
// admin API.
"use strict";
const https = require("node:https");
const http = require("node:http");
const { CosmosClient } = require("@azure/cosmos");
const { runAll } = require("./harness");

const wellKnownKey = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

function env(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === "") {
    if (fallback !== undefined) return fallback;
    throw new Error(`set ${name}`);
  }
  return v;
}

// admin sends a request to the emulator's admin API and returns the parsed body.
function admin(endpoint, method, path, body) {
  const url = new URL("admin/" + path, endpoint);
  const mod = url.protocol === "https:" ? https : http;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { method, rejectUnauthorized: false, headers: payload ? { "Content-Type": "application/json" } : {} }, (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => {
        if (res.statusCode >= 300) return reject(new Error(`admin ${method} ${path}: ${res.statusCode} ${text}`));
        resolve(text ? JSON.parse(text) : undefined);
      });
    });
    req.on("error", reject);
    if (payload) req.write(payload);
    req.end();
  });
}

async function main() {
  const endpoint = env("REKEY_ENDPOINT");
  const computeEndpoint = env("REKEY_COMPUTE_ENDPOINT");
  const key = env("REKEY_KEY", wellKnownKey);
  const client = new CosmosClient({ endpoint, key });
  const computeClient = new CosmosClient({ endpoint: computeEndpoint, key });
  const dbId = "js-" + Date.now();
  const { database } = await client.databases.createIfNotExists({ id: dbId });
  let n = 0;
  const ctx = {
    client,
    computeClient,
    database,
    dbId,
    key,
    endpoint,
    computeEndpoint,
    // container creates a fresh container; opts are the SDK's ContainerRequest
    // fields. Without opts.partitionKey it is keyed by /pk with no version,
    // as the SDK creates containers by default: version 1 hashing.
    async container(prefix, opts = {}) {
      const id = `${prefix}-${++n}`;
      const { container } = await database.containers.create({ id, partitionKey: { paths: ["/pk"] }, ...opts });
      return container;
    },
    admin: (method, path, body) => admin(endpoint, method, path, body),
    split: (container, rangeId) => admin(endpoint, "POST", "split", { database: dbId, container: container.id, rangeId }),
  };
  for (const file of ["items", "queries", "changefeed", "batch", "bulk", "splits", "throttling", "ids", "allversions", "hashing"]) {
    require(`./checks/${file}`);
  }
  const failed = await runAll(ctx, process.argv[2]);
  await database.delete().catch(() => {});
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  console.error("conformance-js: setup failed:", err);
  console.log("conformance-js: 0 passed, 1 failed");
  process.exit(1);
});
