package pipeline

import (
	"sync"

	"github.com/rekey-dev/rekey/migrate"
)

// firstPageItems bounds the pages read under a source RU cap before the
// size of the source's items is known: the cap holds even when they are
// far larger than the 1 KB the cost model assumes until then.
const firstPageItems = 10

// sourcePages sizes the change-feed pages of a run to the source's RU cap
// and says what a page is expected to cost, from the cost model and the
// average size of the items read so far. Safe for concurrent use.
type sourcePages struct {
	mu    sync.Mutex
	items int64 // items read so far
	bytes int64 // their bytes
}

// itemBytes is the average size of the items read so far, 1 KB before
// any.
func (s *sourcePages) itemBytes() (n int, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.items == 0 {
		return 1024, false
	}
	return int(s.bytes / s.items), true
}

// size is the page size to ask for: pageSize, or under a cap (limit, the
// RU one request may be expected to cost; 0 when there is no cap) as many
// items as fit it, at least one.
func (s *sourcePages) size(pageSize int, limit float64) int {
	if limit <= 0 {
		return pageSize
	}
	n, known := s.itemBytes()
	fit := int((limit - migrate.FeedCharge(0, n)) / (migrate.FeedCharge(1, n) - migrate.FeedCharge(0, n)))
	if !known {
		fit = min(fit, firstPageItems)
	}
	return min(max(fit, 1), pageSize)
}

// expected is what a page of up to n items is expected to cost.
func (s *sourcePages) expected(n int) float64 {
	b, _ := s.itemBytes()
	return migrate.FeedCharge(n, b)
}

// observe learns the size of a page's changes: n of them, of bytes in
// all.
func (s *sourcePages) observe(n, bytes int64) {
	s.mu.Lock()
	s.items += n
	s.bytes += bytes
	s.mu.Unlock()
}
