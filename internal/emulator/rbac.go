package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// Data-plane role-based access control for Entra ID requests
// (https://learn.microsoft.com/azure/cosmos-db/how-to-setup-rbac). The
// permission model covers reading and writing data only: management
// operations (create, replace or delete a database or container, read or
// replace throughput) cannot be authorized by an AAD token at all, and
// are refused with 403 substatus 5300. Everything else needs a data action
// (https://learn.microsoft.com/azure/cosmos-db/nosql/security/reference-data-plane-actions)
// that a role assigned to the token's principal grants; the account knows
// the two built-in roles
// (https://learn.microsoft.com/azure/cosmos-db/nosql/security/reference-data-plane-roles),
// assigned at the account scope. Master-key requests are not subject to
// any of this.

// EntraRole is a data-plane role an Entra principal can hold on the account.
type EntraRole int

const (
	// EntraNoRole: every request is refused with 403.
	EntraNoRole EntraRole = iota
	// EntraDataReader is Cosmos DB Built-in Data Reader
	// (00000000-0000-0000-0000-000000000001): readMetadata, items/read,
	// executeQuery, readChangeFeed.
	EntraDataReader
	// EntraDataContributor is Cosmos DB Built-in Data Contributor
	// (00000000-0000-0000-0000-000000000002): readMetadata and every
	// container and item action.
	EntraDataContributor
)

// Data actions the emulator's requests need.
const (
	actionPrefix         = "Microsoft.DocumentDB/databaseAccounts/"
	actionContainers     = actionPrefix + "sqlDatabases/containers/"
	actionReadMetadata   = actionPrefix + "readMetadata"
	actionItemsCreate    = actionContainers + "items/create"
	actionItemsRead      = actionContainers + "items/read"
	actionItemsReplace   = actionContainers + "items/replace"
	actionItemsUpsert    = actionContainers + "items/upsert"
	actionItemsDelete    = actionContainers + "items/delete"
	actionExecuteQuery   = actionContainers + "executeQuery"
	actionReadChangeFeed = actionContainers + "readChangeFeed"
)

// grants reports whether role allows action.
func (r EntraRole) grants(action string) bool {
	switch r {
	case EntraDataContributor:
		return action == actionReadMetadata || strings.HasPrefix(action, actionContainers)
	case EntraDataReader:
		switch action {
		case actionReadMetadata, actionItemsRead, actionExecuteQuery, actionReadChangeFeed:
			return true
		}
	}
	return false
}

// roleAssignments are the account's role assignments, by principal object id.
type roleAssignments struct {
	mu    sync.RWMutex
	roles map[string]EntraRole
}

func newRoleAssignments() *roleAssignments {
	return &roleAssignments{roles: map[string]EntraRole{EntraPrincipal: EntraDataContributor}}
}

func (a *roleAssignments) role(principal string) EntraRole {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.roles[principal]
}

// AssignEntraRole gives principal (an object id) role on the whole
// account, replacing the role it held; EntraNoRole removes its assignment.
// EntraPrincipal starts as a Data Contributor. It fails when the emulator
// was started without Options.Entra.
func (e *Emulator) AssignEntraRole(principal string, role EntraRole) error {
	if e.roles == nil {
		return fmt.Errorf("assign entra role to %s: the emulator was started without Entra ID (Options.Entra)", principal)
	}
	e.roles.mu.Lock()
	defer e.roles.mu.Unlock()
	if role == EntraNoRole {
		delete(e.roles.roles, principal)
	} else {
		e.roles.roles[principal] = role
	}
	return nil
}

// permission is what a request needs of an Entra principal.
type permission struct {
	actions    []string // data actions, all required
	resource   string   // what they apply to, as the 403 names it
	management bool     // a management operation, which no token may perform
}

// authorizeEntra checks that who may make the request: 403 substatus 5300
// for a management operation, 5301 when the principal may not read
// metadata, 5302 when it lacks the request's data action.
func (e *Emulator) authorizeEntra(rc *requestContext, who entraIdentity) *svcError {
	need, err := requiredPermission(rc)
	if err != nil {
		return err
	}
	if need.management {
		return entraError(http.StatusForbidden, subStatusRbacOperationNotSupported,
			authBlockedPrefix+"The given request [%s /%s] cannot be authorized by AAD token in data plane. "+entraLearnMore, rc.r.Method, strings.Join(rc.segs, "/"))
	}
	role := e.roles.role(who.principal)
	for _, action := range need.actions {
		if role.grants(action) {
			continue
		}
		sub := subStatusRbacUnauthorizedNameBasedData
		if action == actionReadMetadata {
			sub = subStatusRbacUnauthorizedMetadata
		}
		return entraError(http.StatusForbidden, sub,
			authBlockedPrefix+"Request is blocked because principal [%s] does not have required RBAC permissions to perform action [%s] on resource [%s]. "+entraLearnMore, who.principal, action, need.resource)
	}
	return nil
}

// requiredPermission maps a request to the data actions it needs and the
// resource they apply to, or reports a management operation. Reads of the
// account, databases, containers and partition key ranges are metadata
// reads. Patch counts as a replace, a read feed of items as a query, and a
// batch or bulk request needs the action of each of its operations. The
// error is a body that cannot be read.
func requiredPermission(rc *requestContext) (permission, *svcError) {
	s, method := rc.segs, rc.r.Method
	readOnly := method == http.MethodGet || method == http.MethodHead || (method == http.MethodPost && isQuery(rc))
	switch {
	case len(s) == 0:
		return permission{actions: []string{actionReadMetadata}, resource: "/"}, nil
	case s[0] == typeOffer:
		return permission{management: true}, nil
	case len(s) < 5: // dbs, dbs/{db}, .../colls, .../colls/{coll}
		if !readOnly {
			return permission{management: true}, nil
		}
		return permission{actions: []string{actionReadMetadata}, resource: "/"}, nil
	}
	need := permission{resource: strings.Join(s[:4], "/") + "/"}
	one := func(action string) (permission, *svcError) {
		need.actions = []string{action}
		return need, nil
	}
	switch {
	case s[4] != typeDoc:
		return one(actionReadMetadata) // pkranges, and what the router refuses
	case len(s) == 6 && (method == http.MethodGet || method == http.MethodHead):
		return one(actionItemsRead)
	case len(s) == 6 && (method == http.MethodPut || method == http.MethodPatch):
		return one(actionItemsReplace)
	case len(s) == 6 && method == http.MethodDelete:
		return one(actionItemsDelete)
	case len(s) == 6:
		return need, nil // the router answers 405
	case method == http.MethodGet && rc.header("A-IM") != "":
		return one(actionReadChangeFeed)
	case method == http.MethodGet, isQueryPlanRequest(rc), isQuery(rc):
		return one(actionExecuteQuery)
	case rc.headerBool("x-ms-cosmos-is-batch-request"):
		actions, err := batchActions(rc)
		need.actions = actions
		return need, err
	case rc.headerBool("x-ms-documentdb-is-upsert"):
		return one(actionItemsUpsert)
	}
	return one(actionItemsCreate)
}

// batchActions lists the actions of a batch or bulk request's operations,
// each once; a body that is not an array of operations needs none here,
// and the handler answers it 400.
func batchActions(rc *requestContext) ([]string, *svcError) {
	body, err := rc.readBody()
	if err != nil {
		return nil, err
	}
	var ops []struct {
		OperationType string `json:"operationType"`
	}
	if json.Unmarshal(body, &ops) != nil {
		return nil, nil
	}
	byType := map[string]string{
		"create": actionItemsCreate, "upsert": actionItemsUpsert, "read": actionItemsRead,
		"replace": actionItemsReplace, "patch": actionItemsReplace, "delete": actionItemsDelete,
	}
	var actions []string
	seen := map[string]bool{}
	for _, op := range ops {
		a, ok := byType[strings.ToLower(op.OperationType)]
		if ok && !seen[a] {
			seen[a] = true
			actions = append(actions, a)
		}
	}
	return actions, nil
}
