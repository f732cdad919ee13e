package lease

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// The lease document is the Azure Cosmos DB change feed processor's EPK-based
// lease, so tools that read the processor's lease container (estimators,
// dashboards, scripts) can read rekey's. The schema comes from the SDKs:
//
//   - .NET v3 SDK, Microsoft.Azure.Cosmos/src/ChangeFeedProcessor/
//     LeaseManagement/DocumentServiceLeaseCoreEpk.cs: "id", "_etag",
//     "version" (DocumentServiceLeaseVersion.EPKRangeBasedLease = 1),
//     "LeaseToken", "FeedRange", "Owner", "ContinuationToken", "timestamp"
//     (falling back to "_ts" when absent) and "properties" (a string map).
//   - the same SDK's FeedRangeInternalConverter.cs and Routing/
//     RangeJsonConverter.cs: an EPK feed range is {"Range": {"min", "max",
//     "isMinInclusive", "isMaxInclusive"}}.
//   - DocumentServiceLeaseManagerCosmos.cs and
//     DocumentServiceLeaseStoreManagerOptions.cs: an EPK lease's token is
//     "<min>-<max>" and its id is "<prefix>..<token>".
//   - Java SDK, azure-cosmos .../changefeed/Lease.java and
//     ServiceItemLeaseV1.java: the same names (Java spells "feedRange"; Go's
//     decoder matches either) and an ISO-8601 "timestamp".
//
// rekey's counters live in "properties", the processor's bag for custom
// data, under the keys below.

// leaseDocVersion is DocumentServiceLeaseVersion.EPKRangeBasedLease.
const leaseDocVersion = 1

// Keys of rekey's counters in a lease document's "properties".
const (
	propItems          = "items"
	propRU             = "ru"
	propCheckpointedAt = "checkpointedAt"
	propCaughtUpAt     = "caughtUpAt"
	propLastChangeTS   = "lastChangeTs"
	propHandoffTo      = "handoffTo"
	propFence          = "fence"
	propTTL            = "ttl"
)

// timeLayout is how lease documents write instants: UTC with seven
// fractional digits, the form Newtonsoft.Json gives a .NET DateTime and
// java.time parses, so every reader gets the same instant back.
const timeLayout = "2006-01-02T15:04:05.0000000Z07:00"

// timePrecision is what timeLayout keeps; stores truncate to it so a lease
// they return equals the one they read back later.
const timePrecision = 100 * time.Nanosecond

// leaseDoc is the JSON form of a lease. Pointer fields are written as null
// when unset, as the processor writes a free lease's Owner and a new lease's
// ContinuationToken.
type leaseDoc struct {
	ID                string            `json:"id"`
	ETag              string            `json:"_etag,omitempty"`
	Version           *int              `json:"version"`
	LeaseToken        string            `json:"LeaseToken"`
	FeedRange         *feedRangeDoc     `json:"FeedRange"`
	Owner             *string           `json:"Owner"`
	ContinuationToken *string           `json:"ContinuationToken"`
	Timestamp         *string           `json:"timestamp"`
	Properties        map[string]string `json:"properties"`
	// TS is the service's last-modified time in epoch seconds; the
	// processor reads it when "timestamp" is absent. rekey never writes it.
	TS *int64 `json:"_ts,omitempty"`
}

type feedRangeDoc struct {
	Range *rangeDoc `json:"Range"`
}

type rangeDoc struct {
	Min            *string `json:"min"`
	Max            *string `json:"max"`
	IsMinInclusive *bool   `json:"isMinInclusive,omitempty"`
	IsMaxInclusive *bool   `json:"isMaxInclusive,omitempty"`
}

// encodeLease returns l as a lease document with the given document id.
// The ETag is written as "_etag" when etag is not empty (the file store
// keeps its ETag in the document; Cosmos DB sets "_etag" itself).
func encodeLease(docID string, l Lease, etag string) ([]byte, error) {
	if err := checkLease(l); err != nil {
		return nil, err
	}
	version := leaseDocVersion
	minIncl, maxIncl := true, false
	doc := leaseDoc{
		ID:         docID,
		ETag:       etag,
		Version:    &version,
		LeaseToken: l.ID,
		FeedRange: &feedRangeDoc{Range: &rangeDoc{
			Min: &l.Range.Min, Max: &l.Range.Max,
			IsMinInclusive: &minIncl, IsMaxInclusive: &maxIncl,
		}},
		Owner:             nullIfEmpty(l.Owner),
		ContinuationToken: nullIfEmpty(l.Continuation),
		Timestamp:         formatTime(l.Timestamp),
		Properties: map[string]string{
			propItems:        strconv.FormatInt(l.Items, 10),
			propRU:           strconv.FormatFloat(l.RU, 'f', -1, 64),
			propLastChangeTS: strconv.FormatInt(l.LastChangeTS, 10),
		},
	}
	if s := formatTime(l.CheckpointedAt); s != nil {
		doc.Properties[propCheckpointedAt] = *s
	}
	if l.HandoffTo != "" {
		doc.Properties[propHandoffTo] = l.HandoffTo
	}
	if l.Fence != "" {
		doc.Properties[propFence] = l.Fence
	}
	if l.TTL > 0 {
		doc.Properties[propTTL] = l.TTL.String()
	}
	if s := formatTime(l.CaughtUpAt); s != nil {
		doc.Properties[propCaughtUpAt] = *s
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// decodeLease parses a lease document. It returns the lease (ETag taken from
// the document's "_etag"), and the document's id. Any document the processor
// could not use as an EPK lease, or whose rekey properties do not parse, is
// an error; fields it does not know (_rid, _self, partitionKey, Mode, other
// properties) are ignored.
func decodeLease(b []byte) (Lease, string, error) {
	var doc leaseDoc
	if err := strictUnmarshal(b, &doc); err != nil {
		return Lease{}, "", err
	}
	switch {
	case doc.ID == "":
		return Lease{}, "", errors.New(`no "id"`)
	case doc.Version == nil || *doc.Version != leaseDocVersion:
		return Lease{}, "", fmt.Errorf(`"version" is not %d (an EPK-range lease)`, leaseDocVersion)
	case doc.LeaseToken == "":
		return Lease{}, "", errors.New(`no "LeaseToken"`)
	case doc.FeedRange == nil || doc.FeedRange.Range == nil:
		return Lease{}, "", errors.New(`no "FeedRange.Range"`)
	}
	r := doc.FeedRange.Range
	switch {
	case r.Min == nil || r.Max == nil:
		return Lease{}, "", errors.New(`"FeedRange.Range" lacks "min" or "max"`)
	case r.IsMinInclusive != nil && !*r.IsMinInclusive,
		r.IsMaxInclusive != nil && *r.IsMaxInclusive:
		return Lease{}, "", errors.New(`"FeedRange.Range" is not [min, max)`)
	}
	l := Lease{
		ID:           doc.LeaseToken,
		Range:        Range{Min: *r.Min, Max: *r.Max},
		Continuation: deref(doc.ContinuationToken),
		Owner:        deref(doc.Owner),
		ETag:         doc.ETag,
	}
	var err error
	if doc.Timestamp != nil {
		if l.Timestamp, err = parseTime(*doc.Timestamp); err != nil {
			return Lease{}, "", fmt.Errorf(`"timestamp": %w`, err)
		}
	} else if doc.TS != nil {
		// The processor's rule: no explicit timestamp means the
		// service's last-modified time.
		if l.Timestamp, err = checkTime(time.Unix(*doc.TS, 0).UTC()); err != nil {
			return Lease{}, "", fmt.Errorf(`"_ts": %w`, err)
		}
	}
	if err := decodeProperties(doc.Properties, &l); err != nil {
		return Lease{}, "", err
	}
	if err := checkLease(l); err != nil {
		return Lease{}, "", err
	}
	return l, doc.ID, nil
}

func decodeProperties(p map[string]string, l *Lease) error {
	var err error
	l.HandoffTo = p[propHandoffTo]
	l.Fence = p[propFence]
	if s, ok := p[propTTL]; ok {
		if l.TTL, err = time.ParseDuration(s); err != nil || l.TTL < 0 {
			return fmt.Errorf("property %q: %q is not a duration", propTTL, s)
		}
	}
	if s, ok := p[propItems]; ok {
		if l.Items, err = strconv.ParseInt(s, 10, 64); err != nil {
			return fmt.Errorf("property %q: %w", propItems, err)
		}
	}
	if s, ok := p[propRU]; ok {
		if l.RU, err = strconv.ParseFloat(s, 64); err != nil {
			return fmt.Errorf("property %q: %w", propRU, err)
		}
	}
	if s, ok := p[propLastChangeTS]; ok {
		if l.LastChangeTS, err = strconv.ParseInt(s, 10, 64); err != nil {
			return fmt.Errorf("property %q: %w", propLastChangeTS, err)
		}
	}
	if s, ok := p[propCheckpointedAt]; ok {
		if l.CheckpointedAt, err = parseTime(s); err != nil {
			return fmt.Errorf("property %q: %w", propCheckpointedAt, err)
		}
	}
	if s, ok := p[propCaughtUpAt]; ok {
		if l.CaughtUpAt, err = parseTime(s); err != nil {
			return fmt.Errorf("property %q: %w", propCaughtUpAt, err)
		}
	}
	return nil
}

// checkLease refuses what a lease document cannot hold faithfully.
func checkLease(l Lease) error {
	if err := validateID(l.ID); err != nil {
		return err
	}
	if math.IsNaN(l.RU) || math.IsInf(l.RU, 0) {
		return fmt.Errorf("lease %s: RU %v is not a finite number", l.ID, l.RU)
	}
	for _, t := range []time.Time{l.Timestamp, l.CheckpointedAt, l.CaughtUpAt} {
		if _, err := checkTime(t); err != nil {
			return fmt.Errorf("lease %s: %w", l.ID, err)
		}
	}
	return nil
}

// metaDoc is the JSON form of a Meta: the Meta with the document id.
type metaDoc struct {
	ID string `json:"id"`
	Meta
}

func encodeMeta(docID string, m Meta) ([]byte, error) {
	b, err := json.MarshalIndent(metaDoc{ID: docID, Meta: m}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func decodeMeta(b []byte) (Meta, error) {
	var doc metaDoc
	if err := strictUnmarshal(b, &doc); err != nil {
		return Meta{}, err
	}
	if doc.ID == "" {
		return Meta{}, errors.New(`no "id"`)
	}
	for _, c := range []*Cutover{doc.Meta.Cutover, doc.Meta.RolledBack} {
		if c != nil && c.Application != nil {
			// The meta is written indented, examples included: give them
			// back as they were recorded.
			c.Application.Before = compactJSON(c.Application.Before)
			c.Application.After = compactJSON(c.Application.After)
		}
	}
	return doc.Meta, nil
}

// compactJSON returns raw without insignificant whitespace (nil stays nil).
func compactJSON(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return nil
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

// strictUnmarshal decodes exactly one JSON object; trailing data (a torn or
// concatenated file) is an error.
func strictUnmarshal(b []byte, v any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// formatTime writes t, or nil for the zero time.
func formatTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Truncate(timePrecision).Format(timeLayout)
	return &s
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return checkTime(t.UTC().Truncate(timePrecision))
}

// checkTime accepts the instants RFC 3339 can write: years 1 to 9999.
func checkTime(t time.Time) (time.Time, error) {
	if t.IsZero() {
		return t, nil
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}, fmt.Errorf("time %v is outside years 1-9999", t)
	}
	return t, nil
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
