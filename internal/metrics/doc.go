// Package metrics serves a rekey worker's Prometheus metrics and its health
// endpoint (--metrics-addr).
//
// The pipeline knows nothing of Prometheus: it counts into its
// pipeline.Stats, the flow control keeps a controller per target
// partition (pacing.PartitionState) and status.Poller re-reads the
// migration's state. The Collector reads those at each scrape, so what a
// scrape shows is exactly what the run's summary shows at the same moment.
// Metrics live in a registry of their own (NewRegistry), never in the
// global one. docs/metrics.md lists every metric.
package metrics
