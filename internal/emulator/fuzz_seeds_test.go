package emulator_test

import "strings"

// fuzzSeed is one request of FuzzHandler's seed corpus.
type fuzzSeed struct {
	method, path, header, body string
}

// Header lines the SDK sends, for the seeds.
const (
	pkA      = "x-ms-documentdb-partitionkey: [\"a\"]\n"
	isQuery  = "x-ms-documentdb-isquery: True\nContent-Type: application/query+json\n"
	cross    = "x-ms-documentdb-query-enablecrosspartition: true\n"
	feed     = "A-IM: Incremental Feed\n"
	isBatch  = "x-ms-cosmos-is-batch-request: True\nx-ms-cosmos-batch-atomic: True\n"
	docsPath = "/dbs/db/colls/c/docs"
)

// fuzzSeeds cover every route with valid requests and with the malformed
// variants a client could send: bad JSON, wrong types, bad headers, odd paths.
var fuzzSeeds = []fuzzSeed{
	// account, databases, containers
	{"GET", "/", "", ""},
	{"GET", "/dbs", "x-ms-max-item-count: 1\n", ""},
	{"GET", "/dbs", "x-ms-continuation: {\"skip\":1}\n", ""},
	{"POST", "/dbs", "", `{"id":"new"}`},
	{"POST", "/dbs", "x-ms-offer-throughput: 350\n", `{"id":"low"}`},
	{"POST", "/dbs", "x-ms-cosmos-offer-autopilot-settings: {\"maxThroughput\":4000}\n", `{"id":"auto"}`},
	{"POST", "/dbs", "x-ms-cosmos-offer-autopilot-settings: {maxThroughput\n", `{"id":"auto"}`},
	{"POST", "/dbs", "", `{"id":"db"}`},
	{"POST", "/dbs", "", `{"id":`},
	{"POST", "/dbs", "", `{"id":5}`},
	{"POST", "/dbs", "", `["id"]`},
	{"POST", "/dbs", isQuery, `{"query":"SELECT * FROM root r WHERE r.id = @id","parameters":[{"name":"@id","value":"db"}]}`},
	{"DELETE", "/dbs/db", "", ""},
	{"PUT", "/dbs/db", "", `{"id":"db"}`},
	{"POST", "/dbs/db/colls", "x-ms-offer-throughput: 30000\n", `{"id":"n","partitionKey":{"paths":["/x"],"kind":"Hash","version":2},"defaultTtl":-1}`},
	{"POST", "/dbs/db/colls", "", `{"id":"n","partitionKey":{"paths":["/x","/y","/z","/w"],"kind":"MultiHash","version":2}}`},
	{"POST", "/dbs/db/colls", "", `{"id":"n","partitionKey":{"paths":["x"]},"defaultTtl":0}`},
	{"POST", "/dbs/db/colls", "", `{"id":"n","partitionKey":{"paths":["/\"a b\"/c"],"kind":"Hash"},"indexingPolicy":{"indexingMode":"none","automatic":false}}`},
	{"POST", "/dbs/db/colls", "", `{"id":"n","partitionKey":"oops"}`},
	{"GET", "/dbs/db/colls/c", "x-ms-documentdb-populatequotainfo: true\n", ""},
	{"PUT", "/dbs/db/colls/c", "", `{"id":"c","partitionKey":{"paths":["/pk"],"kind":"Hash","version":2},"indexingPolicy":{"excludedPaths":[{"path":"/*"}]}}`},
	{"PUT", "/dbs/db/colls/c", "", `{"id":"c","partitionKey":{"paths":["/other"],"kind":"Hash","version":2}}`},
	{"PUT", "/dbs/db/colls/c", "If-Match: \"stale\"\n", `{"id":"c","partitionKey":{"paths":["/pk"],"kind":"Hash","version":2}}`},
	{"DELETE", "/dbs/db/colls/h", "", ""},
	{"POST", "/dbs/db/colls", isQuery, `{"query":"SELECT * FROM root r WHERE r.id = 'c'"}`},

	// items
	{"POST", docsPath, pkA, `{"id":"3","pk":"a"}`},
	{"POST", docsPath, pkA + "x-ms-documentdb-is-upsert: True\nPrefer: return=minimal\n", `{"id":"1","pk":"a","_rid":"x","_custom":1}`},
	{"POST", docsPath, pkA, `{"id":"3","pk":"b"}`},
	{"POST", docsPath, "x-ms-documentdb-partitionkey: [5]\n", `{"id":"3","pk":5.0}`},
	{"POST", docsPath, "x-ms-documentdb-partitionkey: [null]\n", `{"id":"3","pk":null}`},
	{"POST", docsPath, "x-ms-documentdb-partitionkey: [{}]\n", `{"id":"3"}`},
	{"POST", docsPath, "x-ms-documentdb-partitionkey: [[1]]\n", `{"id":"3","pk":[1]}`},
	{"POST", docsPath, "x-ms-documentdb-partitionkey: [1e999]\n", `{"id":"3","pk":1e999}`},
	{"POST", docsPath, "x-ms-documentdb-partitionkey: a\n", `{"id":"3","pk":"a"}`},
	{"POST", docsPath, "", `{"id":"3","pk":"a"}`},
	{"POST", docsPath, pkA, `{"id":"3","pk":"a"`},
	{"POST", docsPath, pkA, `{"id":3,"pk":"a"}`},
	{"POST", docsPath, pkA, `{"id":"","pk":"a"}`},
	{"POST", docsPath, pkA, `{"id":"a/b","pk":"a","id":"dup"}`},
	{"POST", docsPath, pkA, `{"pk":"a","nested":{"deep":[[[{}]]]},"n":-0.0e-0}`},
	{"POST", docsPath, pkA, "{\"id\":\"\\u00e9\\ud83d\\ude00\",\"pk\":\"a\"}"},
	{"POST", docsPath, pkA, `"just a string"`},
	{"GET", docsPath + "/1", pkA, ""},
	{"GET", docsPath + "/1", pkA + "If-None-Match: *\n", ""},
	{"GET", docsPath + "/1", "x-ms-documentdb-partitionkey: [\"a\",\"b\"]\n", ""},
	{"GET", docsPath + "/a%2Fb", pkA, ""},
	{"GET", docsPath + "/%2520", pkA, ""},
	{"GET", docsPath + "/x%5Cy", pkA, ""},
	{"PUT", docsPath + "/1", pkA + "If-Match: \"00000000-0000-0000-0000-000000000000\"\n", `{"id":"1","pk":"a"}`},
	{"PUT", docsPath + "/1", pkA, `{"id":"2","pk":"a"}`},
	{"DELETE", docsPath + "/1", pkA + "If-Match: *\n", ""},
	{"DELETE", docsPath + "/nope", pkA, ""},
	{"GET", "/dbs/db/colls/h/docs/1", "x-ms-documentdb-partitionkey: [\"t\",1]\n", ""},
	{"GET", "/dbs/db/colls/h/docs/1", "x-ms-documentdb-partitionkey: [\"t\"]\n", ""},

	// patch
	{"PATCH", docsPath + "/1", pkA, `{"operations":[{"op":"add","path":"/arr/0","value":0},{"op":"incr","path":"/n","value":1.5},{"op":"move","from":"/o/p","path":"/moved"}]}`},
	{"PATCH", docsPath + "/1", pkA, `{"condition":"from c where c.n = 1","operations":[{"op":"set","path":"/arr/1/x","value":{"y":[]}}]}`},
	{"PATCH", docsPath + "/1", pkA, `{"condition":"from c where","operations":[{"op":"remove","path":"/o"}]}`},
	{"PATCH", docsPath + "/1", pkA, `{"operations":[{"op":"replace","path":"/","value":1}]}`},
	{"PATCH", docsPath + "/1", pkA, `{"operations":[{"op":"remove","path":"/arr/99"},{"op":"incr","path":"/o","value":"x"}]}`},
	{"PATCH", docsPath + "/1", pkA, `{"operations":[{"op":"set","path":"/pk","value":"b"}]}`},
	{"PATCH", docsPath + "/1", pkA, `{"operations":[{"op":"add","path":"/a~1b/~0c","value":1}]}`},
	{"PATCH", docsPath + "/1", pkA, `{"operations":[]}`},
	{"PATCH", docsPath + "/1", pkA, `[{"op":"add"}]`},

	// queries
	{"POST", docsPath, isQuery + pkA, `{"query":"SELECT * FROM c WHERE c.n = @n","parameters":[{"name":"@n","value":1}]}`},
	{"POST", docsPath, isQuery + cross + "x-ms-max-item-count: 2\n", `{"query":"SELECT c.id, c.arr[1].x FROM c WHERE c.pk IN ('a','b') OR NOT IS_DEFINED(c.n)"}`},
	{"POST", docsPath, isQuery + cross, `{"query":"SELECT * FROM c ORDER BY c.n"}`},
	{"POST", docsPath, isQuery + cross, `{"query":"SELECT VALUE COUNT(1) FROM c"}`},
	{"POST", docsPath, isQuery, `{"query":"SELECT * FROM c"}`},
	{"POST", docsPath, isQuery + "x-ms-documentdb-partitionkeyrangeid: 1\n", `{"query":"SELECT VALUE COUNT(1) FROM c"}`},
	{"POST", docsPath, isQuery + "x-ms-documentdb-partitionkeyrangeid: 0\n", `{"query":"SELECT * FROM c"}`},
	{"POST", docsPath, isQuery + pkA, `{"query":"SELECT TOP 1 * FROM c ORDER BY c.n DESC OFFSET 0 LIMIT 1"}`},
	{"POST", docsPath, isQuery + pkA + "x-ms-continuation: {\"ranges\":[{\"min\":\"\",\"max\":\"FF\",\"seq\":1}]}\n", `{"query":"SELECT * FROM c"}`},
	{"POST", docsPath, isQuery + pkA + "x-ms-continuation: garbage\n", `{"query":"SELECT * FROM c"}`},
	{"POST", docsPath, isQuery + pkA + "x-ms-max-item-count: 0\n", `{"query":"SELECT * FROM c"}`},
	{"POST", docsPath, isQuery + pkA, `{"query":"SELEC * FROM c"}`},
	{"POST", docsPath, isQuery + pkA, `{"query":"SELECT * FROM c JOIN t IN c.arr WHERE t.x = 2 GROUP BY c.id"}`},
	{"POST", docsPath, isQuery + pkA, `{"query":""}`},
	{"POST", docsPath, isQuery + pkA, `{"query":"SELECT * FROM c","parameters":[{"name":"n"}]}`},
	{"POST", "/dbs/db/colls/h/docs", isQuery + "x-ms-documentdb-partitionkey: [\"t\"]\n", `{"query":"SELECT * FROM c"}`},
	{"GET", docsPath, "x-ms-max-item-count: 1\n", ""},
	{"POST", docsPath, isQuery + pkA, `{"query":"SELECT * FROM c WHERE ` + strings.Repeat("(", 1100) + "true" + strings.Repeat(")", 1100) + `"}`},
	{"POST", docsPath, isQuery + pkA, `{"query":"SELECT * FROM c WHERE c.id = '` + strings.Repeat("[", 1100) + `'"}`},

	// batches
	{"POST", docsPath, isBatch + pkA, `[{"operationType":"Create","resourceBody":{"id":"9","pk":"a"}},{"operationType":"Read","id":"1"},{"operationType":"Patch","id":"1","resourceBody":{"operations":[{"op":"incr","path":"/n","value":1}]}}]`},
	{"POST", docsPath, isBatch + pkA, `[{"operationType":"Upsert","resourceBody":{"id":"9","pk":"a"}},{"operationType":"Create","resourceBody":{"id":"1","pk":"a"}}]`},
	{"POST", docsPath, isBatch + pkA, `[{"operationType":"Replace","id":"1","ifMatch":"\"x\"","resourceBody":{"id":"1","pk":"a"}},{"operationType":"Delete","id":"2"}]`},
	{"POST", docsPath, isBatch + pkA, `[{"operationType":"Create","resourceBody":"x"},{"operationType":"Explode"}]`},
	{"POST", docsPath, isBatch + pkA, `[]`},
	{"POST", docsPath, isBatch + pkA, `{"ops":1}`},
	{"POST", docsPath, isBatch, `[{"operationType":"Read","id":"1"}]`},

	// change feed
	{"GET", docsPath, feed + "x-ms-documentdb-partitionkeyrangeid: 1\nx-ms-max-item-count: 1\n", ""},
	{"GET", docsPath, feed + "x-ms-documentdb-partitionkeyrangeid: 0\n", ""},
	{"GET", docsPath, feed + "x-ms-documentdb-partitionkeyrangeid: 99\n", ""},
	{"GET", docsPath, feed + "x-ms-documentdb-partitionkeyrangeid: 2\nIf-None-Match: \"3\"\n", ""},
	{"GET", docsPath, feed + "x-ms-documentdb-partitionkeyrangeid: 2\nIf-None-Match: *\n", ""},
	{"GET", docsPath, feed + "x-ms-documentdb-partitionkeyrangeid: 3\nIf-None-Match: garbage\n", ""},
	{"GET", docsPath, feed + pkA + "If-Modified-Since: Mon, 02 Jan 2006 15:04:05 UTC\n", ""},
	{"GET", docsPath, feed + pkA + "If-Modified-Since: yesterday\n", ""},
	{"GET", docsPath, feed, ""},

	// partition key ranges and offers
	{"GET", "/dbs/db/colls/c/pkranges", "", ""},
	{"GET", "/dbs/db/colls/c/pkranges", feed + "If-None-Match: \"2\"\n", ""},
	{"GET", "/dbs/db/colls/c/pkranges", feed + "If-None-Match: \"x\"\n", ""},
	{"POST", "/dbs/db/colls/c/pkranges", "", ""},
	{"GET", "/offers", "", ""},
	{"POST", "/offers", isQuery, `{"query":"SELECT * FROM c WHERE c.offerResourceId = 'x'"}`},
	{"GET", "/offers/offB", "", ""},
	{"PUT", "/offers/offC", "", `{"content":{"offerThroughput":25000}}`},
	{"PUT", "/offers/offC", "", `{"content":{"offerAutopilotSettings":{"maxThroughput":4000}}}`},
	{"PUT", "/offers/offB", "", `{"content":{}}`},

	// paths and methods the emulator does not serve
	{"GET", "/dbs/db/users", "", ""},
	{"GET", "/dbs/db/colls/c/sprocs/x", "", ""},
	{"GET", "/dbs/db/colls/c/docs/1/attachments", pkA, ""},
	{"GET", "/dbs//colls/c", "", ""},
	{"GET", "/nothing/here", "", ""},
	{"OPTIONS", docsPath, "", ""},
	{"POST", "/", "", "{}"},
	{"GET", "/dbs/db?x=1#frag", "", ""},
	{"GET", "/dbs/db", "Authorization: type%3Dmaster%26ver%3D1.0%26sig%3Dbad\n", ""},
	{"GET", "/admin/metrics", "", ""},
}
