package computestate

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// ServiceState is what an admin set on a node's nova-compute service
// (os-services): disabled (the scheduler places nothing there) and
// forced down (the service reads as down whatever its heartbeats say,
// so the scheduler skips it and its servers may be evacuated). A node
// without a row is enabled and not forced down. The row is keyed by the
// node's name, which is all a service is here (os-services derives the
// rest from the cluster's members).
type ServiceState struct {
	ID             string    `json:"id"` // the node's name
	Disabled       bool      `json:"disabled,omitempty"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
	ForcedDown     bool      `json:"forced_down,omitempty"`
	Updated        time.Time `json:"updated"`
}

// TableServiceStates holds the service states. A table of its own, so a
// snapshot made before it existed restores into an empty one.
const TableServiceStates = "compute_service_states"

func serviceStatesTable() store.Table {
	return store.NewTable(TableServiceStates, &ServiceState{})
}

// ServiceStateOf is host's service state (the zero state, enabled and
// not forced down, when none was set).
func ServiceStateOf(tx *memdb.Txn, host string) ServiceState {
	if st := store.Get[ServiceState](tx, TableServiceStates, host); st != nil {
		return *st
	}
	return ServiceState{ID: host}
}
