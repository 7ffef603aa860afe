package bmstate

import (
	"errors"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
)

func TestNormalizeResourceClass(t *testing.T) {
	for _, c := range []string{"CUSTOM_BAREMETAL_SMALL", "baremetal-small", "baremetal_small", "BAREMETAL_SMALL", "Baremetal-Small", " custom_baremetal-small "} {
		if got := NormalizeResourceClass(c); got != "BAREMETAL_SMALL" {
			t.Errorf("NormalizeResourceClass(%q) = %q", c, got)
		}
	}
	if NormalizeResourceClass("baremetal-large") == NormalizeResourceClass("CUSTOM_BAREMETAL_SMALL") {
		t.Error("two classes compare equal")
	}
}

// TestComputeHelpers: what the compute service's applies do to nodes,
// each a new revision of the row.
func TestComputeHelpers(t *testing.T) {
	st := store.NewMemState(t, Schema())
	st.Put(NodeTable, &Node{ID: "a", ResourceClass: "baremetal-large", ProvisionState: StateAvailable, Revision: 1})
	st.Put(NodeTable, &Node{ID: "b", ResourceClass: "baremetal-small", ProvisionState: StateAvailable, Maintenance: true, Revision: 1})
	st.Put(NodeTable, &Node{ID: "c", ResourceClass: "baremetal_small", ProvisionState: StateAvailable, Revision: 1})
	tx := st.DB.Txn(true)
	defer tx.Abort()

	n, err := ClaimClass(tx, "CUSTOM_BAREMETAL_SMALL", "s1", map[string]any{"image_source": "img"}, t0)
	if err != nil || n.ID != "c" || n.InstanceUUID != "s1" || n.ProvisionState != StateDeploying {
		t.Fatalf("ClaimClass = %+v, %v", n, err)
	}
	if err := Allocate(tx, n, "s1", t0); err != nil {
		t.Fatal(err)
	}
	if err := PutClaimed(tx, n); err != nil {
		t.Fatal(err)
	}
	if a := AllocationByNode(tx, "c"); a == nil || a.ID != "s1" || a.State != AllocActive || a.ResourceClass != "baremetal_small" ||
		store.Get[Node](tx, NodeTable, "c").AllocationID != "s1" {
		t.Fatalf("allocation of the claimed node: %+v", a)
	}
	var ae *store.ApplyError
	if _, err := ClaimClass(tx, "CUSTOM_BAREMETAL_SMALL", "s2", nil, t0); !errors.As(err, &ae) || ae.Fault != FaultNoNode {
		t.Fatalf("second claim: %v", err)
	}

	n, err = RequestPower(tx, "s1", PowerOff, t0)
	if err != nil || n.TargetPowerState != PowerOff || n.PowerSeq != 1 || n.Revision != 3 {
		t.Fatalf("RequestPower = %+v, %v", n, err)
	}
	if _, err := RequestPower(tx, "nobody", PowerOn, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RequestPower of no node: %v", err)
	}

	n, err = Release(tx, "s1", t0)
	if err != nil || n.ProvisionState != StateDeleting || n.TargetProvisionState != StateAvailable || n.Revision != 4 || n.InstanceUUID != "s1" {
		t.Fatalf("Release = %+v, %v", n, err)
	}
	if n, err := Release(tx, "s1", t0); err != nil || n.Revision != 4 {
		t.Fatalf("second Release = %+v, %v: want no change", n, err)
	}
	n.ProvisionState = StateAvailable // cleaned, Gone not yet reported
	if err := PutClaimed(tx, n); err != nil {
		t.Fatal(err)
	}
	if n, err := Release(tx, "s1", t0); err != nil || n.ProvisionState != StateAvailable || n.Revision != 5 {
		t.Fatalf("Release of a cleaned node = %+v, %v: want no change", n, err)
	}
	if n, err := Release(tx, "nobody", t0); n != nil || err != nil {
		t.Fatalf("Release of no node = %+v, %v", n, err)
	}

	if err := Unclaim(tx, "s1", t0); err != nil {
		t.Fatal(err)
	}
	if n := store.Get[Node](tx, NodeTable, "c"); n.InstanceUUID != "" || n.InstanceInfo != nil || n.AllocationID != "" || n.Revision != 6 {
		t.Fatalf("after Unclaim: %+v", n)
	}
	if a := AllocationByNode(tx, "c"); a != nil {
		t.Fatalf("allocation left after Unclaim: %+v", a)
	}
}
