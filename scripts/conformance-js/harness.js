// A minimal check runner: checks run one after another, each with a time
// limit; the run ends with "conformance-js: N passed, M failed".
"use strict";
const assert = require("node:assert/strict");

const checks = [];

// check registers a named check; fn receives the suite's context.
function check(name, fn, { timeoutMs = 60000 } = {}) {
  checks.push({ name, fn, timeoutMs });
}

async function runAll(ctx, filter) {
  let passed = 0;
  const failed = [];
  const started = Date.now();
  for (const c of checks) {
    if (filter && !c.name.includes(filter)) continue;
    const t0 = Date.now();
    let timer;
    try {
      await Promise.race([
        c.fn(ctx),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${c.timeoutMs} ms`)), c.timeoutMs);
        }),
      ]);
      passed++;
      console.log(`ok   ${c.name} (${Date.now() - t0} ms)`);
    } catch (err) {
      failed.push(c.name);
      const detail = err && err.code !== undefined ? ` [code ${err.code}${err.substatus ? "/" + err.substatus : ""}]` : "";
      console.log(`FAIL ${c.name} (${Date.now() - t0} ms): ${err && err.message ? err.message.split("\n")[0] : err}${detail}`);
    } finally {
      clearTimeout(timer);
    }
  }
  console.log(`runtime: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (failed.length) console.log("failing:\n" + failed.map((n) => "  " + n).join("\n"));
  console.log(`conformance-js: ${passed} passed, ${failed.length} failed`);
  return failed.length;
}

// expectCode runs fn and asserts it rejects with an error whose code is code.
async function expectCode(fn, code, what) {
  try {
    await fn();
  } catch (err) {
    assert.equal(err.code, code, `${what}: code ${err.code}, want ${code} (${err.message ? err.message.split("\n")[0] : err})`);
    return err;
  }
  assert.fail(`${what}: succeeded, want code ${code}`);
}

module.exports = { check, runAll, expectCode, assert };
