package emulator

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// WellKnownKey is the master key of the official Cosmos DB emulator, the
// default here too so tools configured for that emulator work unchanged.
const WellKnownKey = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="

// Options configure an Emulator. The zero value is a valid configuration.
type Options struct {
	// Key is the base64 master key clients sign requests with; WellKnownKey
	// when empty.
	Key string
	// SplitDelay is how long a partition split takes to complete after it is
	// triggered; until then the parent keeps serving. Default 1s.
	SplitDelay time.Duration
	// Logger receives one debug line per request and warnings; discarded when nil.
	Logger *slog.Logger
	// Admin enables the admin API under /admin/ (metrics and fault
	// injection), unauthenticated, for loopback tests and demos.
	Admin bool
	// Clock is the account's time; time.Now when nil. RU budgets refill by
	// it, resources' _ts and the change feed's modification times come from
	// it, items expire by it (ttl.go), the all-versions feed's retention
	// counts by it, and Entra ID tokens are minted and checked against it.
	// Tests pass a manual clock to make throttling, expiry and retention
	// deterministic. The x-ms-date of a master-key signature is checked
	// against the wall clock, which the client signs with.
	Clock func() time.Time
	// Entra makes the account accept Microsoft Entra ID tokens
	// ("type=aad") signed by the emulator's own test issuer (Emulator.Entra)
	// besides master-key signatures, and authorize them by data-plane
	// roles (AssignEntraRole); see entra.go and docs/emulator.md.
	Entra bool
	// Gateway is how ServeHTTP decodes item ids in request paths: the
	// service's current compute gateway (the zero value) or the old routing
	// gateway's quirks, which `rekey emulator` keeps on its main address as
	// the official emulator does on port 8081. ComputeHandler always
	// serves the compute behaviour.
	Gateway Gateway
}

// Gateway names one of the service's front ends, which differ in how they
// decode a resource id in the request path.
type Gateway int

const (
	// ComputeGateway splits the escaped path on '/' and decodes each segment
	// once, so every id the SDK escapes round-trips, as the service's
	// current gateway and the official emulator's port 8903 do
	// (TestItemIdEncodingComputeGW).
	ComputeGateway Gateway = iota
	// RoutingGateway decodes the path twice, treats a backslash as '/', cuts at
	// '#' and trims trailing whitespace from each segment, so ids holding
	// those characters can be created but not addressed (401 or 400), as on
	// the official emulator's port 8081 and the azcosmos suite's
	// TestItemIdEncodingRoutingGW.
	RoutingGateway
)

// Emulator is an in-memory Cosmos DB NoSQL account that speaks the gateway's
// REST protocol. It is an http.Handler; Start serves it on a loopback port.
// It holds no package-level state, so any number can run in one process, and
// it is safe for concurrent use.
type Emulator struct {
	key        []byte
	splitDelay time.Duration
	log        *slog.Logger
	store      *store
	faults     faults
	now        func() time.Time // the account's clock (Options.Clock)
	admin      bool
	gateway    Gateway // what ServeHTTP does; see Options.Gateway

	entra             *EntraIssuer     // nil without Options.Entra
	roles             *roleAssignments // nil without Options.Entra
	localAuthDisabled atomic.Bool      // see SetLocalAuthDisabled
}

// New returns an empty emulator.
func New(opts Options) (*Emulator, error) {
	keyText := opts.Key
	if keyText == "" {
		keyText = WellKnownKey
	}
	key, err := base64.StdEncoding.DecodeString(keyText)
	if err != nil {
		return nil, fmt.Errorf("emulator account key: not valid base64: %w", err)
	}
	if opts.SplitDelay == 0 {
		opts.SplitDelay = time.Second
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	clock := opts.Clock
	if clock == nil {
		clock = time.Now
	}
	var issuer *EntraIssuer
	var roles *roleAssignments
	if opts.Entra {
		if issuer, err = newEntraIssuer(clock); err != nil {
			return nil, err
		}
		roles = newRoleAssignments()
	}
	return &Emulator{
		key:        key,
		splitDelay: opts.SplitDelay,
		log:        logger,
		store:      newStore(clock),
		now:        clock,
		admin:      opts.Admin,
		gateway:    opts.Gateway,

		entra: issuer,
		roles: roles,
	}, nil
}

// SetLocalAuthDisabled turns the account's disableLocalAuth on or off:
// while on, master-key signatures are refused with 401 substatus 5202, as
// the service refuses them, so a test proves that every request of the code
// under test carried an Entra ID token. Tokens cannot create containers
// (403, 5300), so a test creates them with the key first, then turns local
// auth off. Turning it on fails without Options.Entra, which would leave no
// way in.
func (e *Emulator) SetLocalAuthDisabled(disabled bool) error {
	if disabled && e.entra == nil {
		return errors.New("disable local auth: the emulator was started without Entra ID (Options.Entra), so nothing could authenticate")
	}
	e.localAuthDisabled.Store(disabled)
	return nil
}

// Entra is the account's Entra ID token issuer, which mints the tokens it
// accepts; nil when the emulator was started without Options.Entra.
func (e *Emulator) Entra() *EntraIssuer { return e.entra }

// ServeHTTP answers one REST request as the Cosmos DB gateway chosen by
// Options.Gateway would.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.serve(w, r, e.gateway)
}

// ComputeHandler returns a handler for the same account that decodes paths
// as the service's compute gateway does, whatever Options.Gateway says:
// `rekey emulator --compute-addr` serves it on a second port, like the
// official emulator's 8903.
func (e *Emulator) ComputeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.serve(w, r, ComputeGateway) })
}

func (e *Emulator) serve(w http.ResponseWriter, r *http.Request, gw Gateway) {
	rc := newRequestContext(r)
	rc.gateway = gw
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p) // an injected dropped connection: let the server abort it
			}
			e.log.Error("emulator: handler panic", "method", r.Method, "path", r.URL.Path, "panic", p)
			e.writeError(w, rc, newError(http.StatusInternalServerError, "internal error: %v", p))
		}
	}()
	w.Header().Set("x-ms-activity-id", rc.activityID)
	w.Header().Set("x-ms-gatewayversion", "2.14.0")
	if e.admin && strings.HasPrefix(r.URL.Path, "/admin/") {
		e.serveAdmin(w, r)
		return
	}
	if err := rc.resolve(); err != nil {
		e.writeError(w, rc, err)
		return
	}
	if err := e.authorize(rc); err != nil {
		e.writeError(w, rc, err)
		return
	}
	if e.applyFaults(w, rc) {
		return
	}
	if err := e.route(w, rc); err != nil {
		e.writeError(w, rc, err)
	}
	e.log.Debug("emulator request", "method", r.Method, "type", rc.resType, "link", rc.link, "charge", rc.charge)
}
