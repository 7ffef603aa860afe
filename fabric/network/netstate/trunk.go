package netstate

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Trunk is Neutron's trunk (the trunk extension): a parent port whose
// device carries, besides its own untagged frames, the frames of its
// subports, each tagged with the subport's VLAN id. The node hosting the
// parent enforces every subport on the parent's device (dataplane/trunk.go).
type Trunk struct {
	ID           string    `json:"id"`
	Project      string    `json:"project"`
	Name         string    `json:"name"`
	Description  string    `json:"description"`
	PortID       string    `json:"port_id"` // the parent port
	AdminStateUp bool      `json:"admin_state_up"`
	SubPorts     []SubPort `json:"sub_ports,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	Revision     int       `json:"revision"`
	// Tags are the resource's standard-attribute tags, sorted.
	Tags []string `json:"tags,omitempty"`
}

// SubPort is one port of a trunk besides its parent, and the VLAN id its
// frames carry on the parent's device.
type SubPort struct {
	PortID           string `json:"port_id"`
	SegmentationType string `json:"segmentation_type"` // "vlan", the one type built
	SegmentationID   int    `json:"segmentation_id"`   // 1-4094
}

// SubPortOwner is a subport's device_owner, as Neutron sets it.
const SubPortOwner = "trunk:subport"

// TableTrunks holds the trunks; a port is the parent of one trunk at most.
const TableTrunks = "network_trunks"

func trunkTables() []store.Table {
	return []store.Table{
		store.NewTable(TableTrunks, &Trunk{}, store.StringIndex("project", "Project", false),
			&memdb.IndexSchema{Name: "port", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "PortID"}}),
	}
}
