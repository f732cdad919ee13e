package migrate

// Observer is told when a range loop starts and stops applying a page, so
// that a test (the simulator in internal/sim) can check that no two loops,
// in this process or another, ever apply one feed range at the same time.
// Runner.Observer is nil in production.
//
// The Runner calls it from the goroutine that applies the range's pages:
// PageApplying before the first write of a page (or of its dead letters),
// and PageApplied once nothing of that page will be written any more:
// after its checkpoint, or when the page is abandoned (shutdown timeout,
// a lost lease, an error). Every PageApplying is followed by exactly one
// PageApplied. worker is RunConfig.Owner, leaseID the lease's ID and r its
// feed range. Calls must return quickly and must not call the Runner.
type Observer interface {
	PageApplying(worker, leaseID string, r FeedRange)
	PageApplied(worker, leaseID string, r FeedRange)
}
