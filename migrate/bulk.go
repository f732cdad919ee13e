package migrate

// The requests and answers of BulkTarget.

// Limits of the bulk requests the writer builds, as the official SDKs
// build them (docs/cosmos-bulk.md#limits): at most MaxBulkOperations
// operations; a new request once the operations' bodies reach
// BulkRequestBytes, so an item larger than that goes alone.
const (
	MaxBulkOperations = 100
	BulkRequestBytes  = 220201
)

// BulkOpType is what an operation of a bulk request does.
type BulkOpType int

const (
	// BulkCreate creates Body; ErrConflict when (id, key) exists.
	BulkCreate BulkOpType = iota
	// BulkRead reads item ID; ErrNotFound when it does not exist.
	BulkRead
	// BulkReplace replaces item ID with Body when its ETag still equals
	// IfMatch; ErrPreconditionFailed when it changed, ErrNotFound when
	// gone.
	BulkReplace
)

// BulkOp is one operation of a bulk request.
type BulkOp struct {
	Type BulkOpType
	Key  Key
	ID   string // Read and Replace; a Create's id is in its Body
	// Body is the item of a Create or Replace: a JSON object, which an
	// implementation may send without checking it again.
	Body    []byte
	IfMatch string // Replace
}

// BulkResponse is the answer to a bulk request.
type BulkResponse struct {
	// RU is the request's charge, every operation's included.
	RU      float64
	Results []BulkOpResult
}

// BulkOpResult is one operation's answer.
type BulkOpResult struct {
	RU   float64
	ETag string // of the item created, read or replaced
	Body []byte // of a Read: the item
	// Err is nil for a success, and otherwise a *RequestError whose status
	// errors.Is classifies (ErrConflict, ErrNotFound, ErrPreconditionFailed,
	// ErrTooLarge, ErrBadRequest, ErrThrottled with RetryAfter, ErrGone,
	// ErrTransient).
	Err error
	// Resend: the operation failed for a reason of the moment and is to be
	// sent again, as the SDKs' bulk retry policies do: throttled (after
	// RetryAfter), a split or merge of its partition (route it again), a
	// response too large, a transient failure.
	Resend bool
}
