// Package query is the SQL engine of the emulator: it parses Azure Cosmos DB
// for NoSQL queries and evaluates them over JSON documents with the
// service's semantics. It is self-contained (standard library only) and
// knows nothing about HTTP, partitions or continuation tokens; the emulator
// owns those.
//
// # Using it
//
// Parse a query once, Bind it to the request's parameters, then either
// stream or materialize:
//
//	q, err := query.Parse(text)            // *SyntaxError: 400 with the service's message
//	b, err := q.Bind(params)               // *SyntaxError naming a missing parameter
//	if q.Shape().Streamable() {
//		v, ok, err := b.Match(doc)         // per document; TOP/OFFSET/LIMIT are the caller's
//	} else {
//		results, err := b.Run(docs)        // ORDER BY, GROUP BY, aggregates, DISTINCT, TOP, OFFSET LIMIT
//	}
//
// Documents come in as Values: Decode validates JSON bytes, Raw wraps bytes
// already validated. Objects keep their stored member order and are read
// lazily from the JSON text, so a filter touches only the properties it
// names. Results are Values; AppendJSON writes them as the service does.
// Shape tells which clauses a query uses (the gateway cannot serve a
// cross-partition ORDER BY, aggregate, GROUP BY, DISTINCT, ... query);
// PartitionKeyValues and IDCandidates read the filter so that the emulator
// can route to one logical partition or look documents up by id.
// Everything is safe for concurrent use.
//
// # Semantics
//
// They follow the service's documentation on learn.microsoft.com (query
// reference: equality and comparison operators, logical operators, ORDER BY,
// keywords, the system and aggregate functions) and, where the docs are
// silent or loose, the .NET SDK's grammar (sql.g4), reference evaluator
// (tests/.../Query/OfflineEngine) and the baselines its emulator tests
// record against the service:
//
//   - Undefined is a value: a missing property, an operator or function
//     applied to the wrong types. Objects drop undefined members, arrays
//     drop undefined elements, a result that is undefined is not returned.
//   - AND, OR and NOT are three-valued (false AND undefined = false, true OR
//     undefined = true, NOT undefined = undefined). WHERE keeps a document
//     only when the filter is exactly true; so does IN, BETWEEN, LIKE.
//   - = and != are undefined when either side is undefined. Two defined
//     values of different types are unequal (1 = "1" is false, 1 != "1" is
//     true), as the SDK's reference evaluator has it; the docs' table says
//     undefined, which differs only under NOT and !=.
//   - <, <=, >, >= compare two primitives of the same type (numbers
//     numerically, strings ordinally, false < true); across types, or on
//     arrays and objects, they are undefined.
//   - Arithmetic and bitwise operators need numbers (bitwise ones act on
//     32-bit integers, as in JavaScript); || needs strings; ?? yields its
//     left side unless that is undefined. A result that is not finite
//     (1/0) is undefined.
//   - ORDER BY sorts undefined < null < false < true < numbers < strings <
//     arrays < objects and returns documents whose sort key is undefined
//     (first in ascending order). ORDER BY accepts document paths only
//     (the service's error 2206 otherwise).
//   - Aggregates skip undefined. COUNT counts the rest; SUM and AVG are
//     undefined if a value is not a number; MIN and MAX order mixed
//     primitives by type and are undefined if an array or object occurs.
//     Over no values COUNT and SUM are 0, AVG, MIN and MAX undefined.
//     GROUP BY returns groups sorted by key.
//   - Select items are named by their alias, else by the last property of
//     a path (c.a.b and c["a"]["b"] give "b"), else $1, $2, ... Reserved
//     words are not property names after a dot (c.value is a syntax error;
//     write c["value"]), and true, false, null, undefined are lower case.
//   - NOT binds tighter than comparisons, as in the grammar: NOT c.a = 1
//     means (NOT c.a) = 1.
//
// # Not supported
//
// Subqueries (EXISTS, ARRAY(...), IN (SELECT ...), JOIN (SELECT ...)),
// user-defined functions, spatial, full-text, vector, date-time and regular-expression
// functions, ORDER BY RANK, and ORDER BY together with GROUP BY are
// rejected with a *SyntaxError saying so. Arrays and objects are ordered
// among themselves deterministically but not by the service's internal
// hash.
package query
