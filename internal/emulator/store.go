package emulator

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"
)

// store holds every resource of one emulated account. Its mutex guards the
// database and offer maps; each container guards its own data.
type store struct {
	mu      sync.RWMutex
	dbs     map[string]*database // by id
	offers  map[string]*offer    // by offer id
	nextDB  uint32
	nextOff uint32
	etagSeq uint64
	clock   func() time.Time // the account's clock (Options.Clock)
}

func newStore(clock func() time.Time) *store {
	return &store{dbs: map[string]*database{}, offers: map[string]*offer{}, clock: clock}
}

// database is a Cosmos database.
type database struct {
	id, rid string
	ts      int64
	etag    string
	body    props
	offer   *offer // shared throughput, nil when the database has none
	colls   map[string]*container
	nextCol uint32
}

func (d *database) self() string { return "dbs/" + d.rid + "/" }

// findDatabase resolves a name or _rid.
func (s *store) findDatabase(nameOrRID string) *database {
	if d, ok := s.dbs[nameOrRID]; ok {
		return d
	}
	for _, d := range s.dbs {
		if d.rid == nameOrRID {
			return d
		}
	}
	return nil
}

// findContainer resolves a name or _rid within d.
func (d *database) findContainer(nameOrRID string) *container {
	if c, ok := d.colls[nameOrRID]; ok {
		return c
	}
	for _, c := range d.colls {
		if c.rid == nameOrRID {
			return c
		}
	}
	return nil
}

// newETag returns a fresh, quoted ETag in the service's format.
func (s *store) newETag() string {
	s.etagSeq++
	return fmt.Sprintf("\"%08x-0000-0000-0000-%012x\"", s.etagSeq>>48, s.etagSeq)
}

// Resource ids follow the service's layout: a database _rid is 4 bytes, a
// container's 8 (database + container), an item's 16 (container + 8 bytes),
// base64-encoded with '/' replaced by '-'.
func encodeRID(b []byte) string {
	return strings.ReplaceAll(base64.StdEncoding.EncodeToString(b), "/", "-")
}

func databaseRID(n uint32) (string, []byte) {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, n)
	return encodeRID(b), b
}

func containerRID(db []byte, n uint32) (string, []byte) {
	b := make([]byte, 8)
	copy(b, db)
	binary.BigEndian.PutUint32(b[4:], n|0x80000000) // the service sets the top bit for collections
	return encodeRID(b), b
}

func itemRID(coll []byte, seq uint64) string {
	b := make([]byte, 16)
	copy(b, coll)
	binary.LittleEndian.PutUint64(b[8:], seq)
	return encodeRID(b)
}

func decodeRID(rid string) []byte {
	b, _ := base64.StdEncoding.DecodeString(strings.ReplaceAll(rid, "-", "/"))
	return b
}

// unixNow is the service's _ts on the account's clock: whole seconds.
func (s *store) unixNow() int64 { return s.clock().Unix() }
