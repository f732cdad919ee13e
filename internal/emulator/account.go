package emulator

import "net/http"

// regionName is the single region the emulator reports, as the official
// emulator does.
const regionName = "South Central US"

// accountName is the account's id, as the official emulator names it, and
// the name the service's authorization errors give.
const accountName = "localhost"

// readAccount answers GET /: the database account, whose readable and
// writable locations point back at the endpoint the client used, so the SDK's
// global endpoint manager routes every request here.
func (e *Emulator) readAccount(w http.ResponseWriter, rc *requestContext) error {
	scheme := "http"
	if rc.r.TLS != nil {
		scheme = "https"
	}
	endpoint := scheme + "://" + rc.r.Host + "/"
	loc := []map[string]string{{"name": regionName, "databaseAccountEndpoint": endpoint}}
	body := map[string]any{
		"_self":                        "",
		"id":                           accountName,
		"_rid":                         accountName,
		"media":                        "//media/",
		"addresses":                    "//addresses/",
		"_dbs":                         "//dbs/",
		"writableLocations":            loc,
		"readableLocations":            loc,
		"enableMultipleWriteLocations": false,
		"userReplicationPolicy":        map[string]any{"asyncReplication": false, "minReplicaSetSize": 1, "maxReplicasetSize": 4},
		"userConsistencyPolicy":        map[string]any{"defaultConsistencyLevel": "Session"},
		"systemReplicationPolicy":      map[string]any{"minReplicaSetSize": 1, "maxReplicasetSize": 4},
		"readPolicy":                   map[string]any{"primaryReadCoefficient": 1, "secondaryReadCoefficient": 1},
		"queryEngineConfiguration":     `{"maxSqlQueryInputLength":262144,"maxJoinsPerSqlQuery":5,"maxLogicalAndPerSqlQuery":500,"maxLogicalOrPerSqlQuery":500,"maxUdfRefPerSqlQuery":10,"maxInExpressionItemsCount":16000,"queryMaxInMemorySortDocumentCount":500,"maxQueryRequestTimeoutFraction":0.9,"sqlAllowNonFiniteNumbers":false,"sqlAllowAggregateFunctions":true,"sqlAllowSubQuery":true,"sqlAllowScalarSubQuery":true,"allowNewKeywords":true,"sqlAllowLike":true,"sqlAllowGroupByClause":true,"maxSpatialQueryCells":12,"spatialMaxGeometryPointCount":256,"sqlDisableOptimizationFlags":0,"sqlAllowTop":true,"enableSpatialIndexing":true}`,
	}
	rc.charge = 0
	setCommon(w, rc, "", 0)
	writeJSON(w, http.StatusOK, body)
	return nil
}
