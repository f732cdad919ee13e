package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Throughput limits of the service (docs/cosmos-service.md#partitions-and-throughput; concepts-limits.md).
const (
	minManualRU       = 400
	minAutoscaleMaxRU = 1000
	// ruPerNewPartition: a new container gets one physical partition per
	// 6,000 RU/s (scaling-provisioned-throughput-best-practices.md).
	ruPerNewPartition = 6000
	// maxRUPerPartition: a physical partition serves at most 10,000 RU/s;
	// raising throughput past partitions x 10,000 splits partitions.
	maxRUPerPartition = 10000
)

// offer is the throughput of a database (shared) or a container (dedicated).
type offer struct {
	id           string // the offer's id and _rid
	resourceRID  string // offerResourceId: the owner's _rid
	resourceSelf string // the owner's _self
	manual       int    // RU/s when manual, 0 when autoscale
	autoscaleMax int    // max RU/s when autoscale, 0 when manual
	highest      int    // highest RU/s ever provisioned: the floor is highest/100
	etag         string
	ts           int64
}

// maxRU is the RU/s the owner may consume at most: the manual value, or the
// autoscale maximum.
func (o *offer) maxRU() int {
	if o.autoscaleMax > 0 {
		return o.autoscaleMax
	}
	return o.manual
}

// parseOfferHeaders reads the throughput a create request provisions; ok is
// false when it provisions none.
func parseOfferHeaders(rc *requestContext) (manual, autoscaleMax int, ok bool, err *svcError) {
	mt := rc.header("x-ms-offer-throughput")
	as := rc.header("x-ms-cosmos-offer-autopilot-settings")
	if mt != "" && as != "" {
		return 0, 0, false, badRequest("Only one of x-ms-offer-throughput or x-ms-cosmos-offer-autopilot-settings may be specified.")
	}
	if mt != "" {
		n, convErr := strconv.Atoi(mt)
		if convErr != nil {
			return 0, 0, false, badRequest("The x-ms-offer-throughput header %q is not a number.", mt)
		}
		if e := validateManual(n, 0); e != nil {
			return 0, 0, false, e
		}
		return n, 0, true, nil
	}
	if as != "" {
		var s struct {
			MaxThroughput int `json:"maxThroughput"`
		}
		if jsonErr := json.Unmarshal([]byte(as), &s); jsonErr != nil {
			return 0, 0, false, badRequest("The x-ms-cosmos-offer-autopilot-settings header is not valid JSON: %v", jsonErr)
		}
		if e := validateAutoscale(s.MaxThroughput, 0); e != nil {
			return 0, 0, false, e
		}
		return 0, s.MaxThroughput, true, nil
	}
	return 0, 0, false, nil
}

func validateManual(n, highest int) *svcError {
	floor := minManualRU
	if highest/100 > floor {
		floor = highest / 100
	}
	if n < floor {
		return badRequest("The offer throughput %d is below the minimum of %d RU/s.", n, floor)
	}
	if n%100 != 0 {
		return badRequest("The offer throughput %d must be a multiple of 100 RU/s.", n)
	}
	return nil
}

func validateAutoscale(n, highest int) *svcError {
	floor := minAutoscaleMaxRU
	if highest/10 > floor { // the autoscale floor is max/10, bounded by highest/100
		floor = highest / 10 / 1000 * 1000
	}
	if n < minAutoscaleMaxRU || n < floor {
		return badRequest("The autoscale maximum throughput %d is below the minimum of %d RU/s.", n, floor)
	}
	if n%1000 != 0 {
		return badRequest("The autoscale maximum throughput %d must be a multiple of 1000 RU/s.", n)
	}
	return nil
}

// newOffer registers an offer for the resource; the store's lock must be held.
func (s *store) newOffer(resourceRID, resourceSelf string, manual, autoscaleMax int) *offer {
	s.nextOff++
	o := &offer{
		id:           offerID(s.nextOff),
		resourceRID:  resourceRID,
		resourceSelf: resourceSelf,
		manual:       manual,
		autoscaleMax: autoscaleMax,
		etag:         s.newETag(),
		ts:           s.unixNow(),
	}
	o.highest = o.maxRU()
	s.offers[o.id] = o
	return o
}

// offerID makes a short mixed-case id like the service's ("HFln"); clients
// sign offer requests with the id lower-cased.
func offerID(n uint32) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := []byte{'o', 'f', 'f', 'r'}
	for i := 3; i >= 1 && n > 0; i-- {
		b[i] = alphabet[n%uint32(len(alphabet))]
		n /= uint32(len(alphabet))
	}
	return string(b)
}

// body renders the offer as the service returns it.
func (o *offer) body() []byte {
	content := map[string]any{"offerIsRUPerMinuteThroughputEnabled": false}
	if o.autoscaleMax > 0 {
		content["offerAutopilotSettings"] = map[string]any{"maxThroughput": o.autoscaleMax}
	} else {
		content["offerThroughput"] = o.manual
	}
	b, _ := json.Marshal(map[string]any{
		"resource":        o.resourceSelf,
		"offerType":       "Invalid",
		"offerResourceId": o.resourceRID,
		"offerVersion":    "V2",
		"content":         content,
		"id":              o.id,
		"_rid":            o.id,
		"_self":           "offers/" + o.id + "/",
		"_etag":           o.etag,
		"_ts":             o.ts,
	})
	return b
}

func (e *Emulator) routeOffers(w http.ResponseWriter, rc *requestContext) error {
	s := rc.segs
	switch {
	case len(s) == 1 && rc.r.Method == http.MethodPost && isQuery(rc):
		return e.queryOffers(w, rc)
	case len(s) == 1 && rc.r.Method == http.MethodGet:
		return e.listOffers(w, rc)
	case len(s) == 2 && rc.r.Method == http.MethodGet:
		return e.readOffer(w, rc, s[1])
	case len(s) == 2 && rc.r.Method == http.MethodPut:
		return e.replaceOffer(w, rc, s[1])
	case len(s) > 2:
		return newError(http.StatusNotFound, "The resource path %q is not known to this emulator.", "/"+strings.Join(s, "/"))
	default:
		return methodNotAllowed(rc.r.Method)
	}
}

func (e *Emulator) findOffer(id string) *offer {
	e.store.mu.RLock()
	defer e.store.mu.RUnlock()
	for oid, o := range e.store.offers {
		if strings.EqualFold(oid, id) {
			return o
		}
	}
	return nil
}

func (e *Emulator) readOffer(w http.ResponseWriter, rc *requestContext, id string) error {
	o := e.findOffer(id)
	if o == nil {
		return notFound()
	}
	e.store.mu.RLock()
	body := o.body()
	e.store.mu.RUnlock()
	rc.charge = metadataReadRU
	setCommon(w, rc, "", 0)
	w.Header().Set("etag", o.etag)
	writeRaw(w, http.StatusOK, body)
	return nil
}

func (e *Emulator) offerBodies() [][]byte {
	e.store.mu.RLock()
	defer e.store.mu.RUnlock()
	out := make([][]byte, 0, len(e.store.offers))
	for _, o := range e.store.offers {
		out = append(out, o.body())
	}
	return out
}

func (e *Emulator) listOffers(w http.ResponseWriter, rc *requestContext) error {
	return e.writeFeed(w, rc, "Offers", "", e.offerBodies())
}

func (e *Emulator) queryOffers(w http.ResponseWriter, rc *requestContext) error {
	return e.queryResources(w, rc, "Offers", "", e.offerBodies())
}

// replaceOffer changes a resource's throughput. The new budget applies at
// once; a raise past partitions x 10,000 RU/s starts splits that finish after
// the split delay, and the response says so with x-ms-offer-replace-pending.
func (e *Emulator) replaceOffer(w http.ResponseWriter, rc *requestContext, id string) error {
	o := e.findOffer(id)
	if o == nil {
		return notFound()
	}
	body, err := rc.readBody()
	if err != nil {
		return err
	}
	var req struct {
		Content struct {
			OfferThroughput        *int `json:"offerThroughput"`
			OfferAutopilotSettings *struct {
				MaxThroughput int `json:"maxThroughput"`
			} `json:"offerAutopilotSettings"`
		} `json:"content"`
	}
	if jsonErr := json.Unmarshal(body, &req); jsonErr != nil {
		return badRequest("The offer body is not valid JSON: %v", jsonErr)
	}
	if m := rc.header("If-Match"); m != "" && m != o.etag {
		return preconditionFailed()
	}
	manual, autoscale := 0, 0
	switch {
	case req.Content.OfferAutopilotSettings != nil && req.Content.OfferAutopilotSettings.MaxThroughput > 0:
		autoscale = req.Content.OfferAutopilotSettings.MaxThroughput
		if o.manual > 0 {
			return badRequest("Changing a manual offer to autoscale needs a migration, not a replace.")
		}
		if e := validateAutoscale(autoscale, o.highest); e != nil {
			return e
		}
	case req.Content.OfferThroughput != nil:
		manual = *req.Content.OfferThroughput
		if o.autoscaleMax > 0 {
			return badRequest("Changing an autoscale offer to manual needs a migration, not a replace.")
		}
		if e := validateManual(manual, o.highest); e != nil {
			return e
		}
	default:
		return badRequest("The offer content must set offerThroughput or offerAutopilotSettings.maxThroughput.")
	}
	pending := e.applyThroughput(o, manual, autoscale)
	e.store.mu.RLock()
	out := o.body()
	e.store.mu.RUnlock()
	rc.charge = metadataReadRU
	setCommon(w, rc, "", 0)
	w.Header().Set("etag", o.etag)
	if pending {
		w.Header().Set("x-ms-offer-replace-pending", "true")
	}
	writeRaw(w, http.StatusOK, out)
	return nil
}

func (o *offer) String() string {
	if o.autoscaleMax > 0 {
		return fmt.Sprintf("autoscale max %d RU/s", o.autoscaleMax)
	}
	return fmt.Sprintf("%d RU/s", o.manual)
}
