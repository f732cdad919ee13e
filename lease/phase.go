package lease

import (
	"encoding/json"
	"time"
)

// CutoverRequest is a cutover in progress, recorded in the Meta before the
// cutover drains: workers that see it stop (they checkpoint, release their
// leases and take no other), and the cutover fences every lease
// (Lease.Fence) once its owner let go of it. It is itself a lease on the
// migration: its owner renews it (RenewedAt) well within TTL, and a request
// not renewed for TTL belongs to a cutover that died; another cutover may
// take it over, and workers may withdraw it and resume.
type CutoverRequest struct {
	// Owner names the cutover process (hostname/pid).
	Owner string `json:"owner"`
	// At is when the request was made, RenewedAt when it was last renewed.
	At        time.Time `json:"at"`
	RenewedAt time.Time `json:"renewedAt"`
	// TTL is how long the request lasts without a renewal.
	TTL time.Duration `json:"ttl"`
	// DryRun: the cutover checks everything and records nothing; it
	// withdraws the request when it is done.
	DryRun bool `json:"dryRun,omitempty"`
	// Rollback: the request is a rollback's reverse cutover.
	Rollback bool `json:"rollback,omitempty"`
}

// Live reports whether the request's owner renewed it within its TTL.
func (r *CutoverRequest) Live(now time.Time) bool {
	return r != nil && now.Sub(r.RenewedAt) <= r.TTL
}

// ApplicationWrites is what the application must write from the cutover
// on: the new container's partition key paths, how each synthetic key is
// built, and an example item as the application wrote it before and as it
// must write it now.
type ApplicationWrites struct {
	// KeyPaths are the partition key paths of the container the
	// application writes to now, in order (several: a hierarchical key).
	KeyPaths []string `json:"keyPaths"`
	// Synthetic lists the key paths whose value the application builds,
	// each with its template.
	Synthetic []SyntheticKey `json:"synthetic,omitempty"`
	// Before and After are an example item as the application wrote it to
	// the old container and as it must write it to the new one; absent
	// when no item could be read.
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

// SyntheticKey is a key path whose value is built from other fields.
type SyntheticKey struct {
	Path     string `json:"path"`
	Template string `json:"template"`
}

// keepPhase returns m with the phase of rec: the fields only SwapMeta
// changes.
func keepPhase(m, rec Meta) Meta {
	m.CutoverRequest, m.Cutover, m.RolledBack = rec.CutoverRequest, rec.Cutover, rec.RolledBack
	return m
}

// metaSwaps bounds how often SwapMeta reads again after losing a race.
const metaSwaps = 16
