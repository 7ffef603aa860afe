package instances

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// TestAgentEvacuate: a server booted from a volume, evacuated to this
// node (its host now, a rebuild asked), boots from its volume exported
// here, with no image fetched and no local disk made; the node it left,
// back, removes the guest it still runs and its directory, and says
// nothing of the server.
func TestAgentEvacuate(t *testing.T) {
	needTools(t)
	w := newWorld(t)
	hostA, hostB := hypervisor.NewFakeHost(t.TempDir()), hypervisor.NewFakeHost(t.TempDir())
	old := newAgent(t, w, hostA, t.TempDir(), &logs{})
	fresh := newAgent(t, w, hostB, t.TempDir(), &logs{})
	fresh.Node = "n2"
	exA, exB := &bootExports{}, &bootExports{}
	old.Volumes, fresh.Volumes = exA, exB
	ctx := context.Background()
	const vol = "a1111111-2222-3333-4444-555555555555"
	w.Put("compute_servers", &computestate.Server{ID: "s1", Project: "p1", Name: "vm1", Host: "n1", BootVolume: vol,
		Flavor: computestate.Flavor{ID: "f1", VCPUs: 1, RAM: 256}, Want: "active", VMState: "building", TaskState: "spawning"})
	old.reconcile(ctx)
	if st, _ := mustAdopt(t, old, "s1").State(ctx); st != hypervisor.Running {
		t.Fatalf("guest on n1 %s", st)
	}
	// n1 goes down (its guest left running); the server is evacuated.
	s := w.server("s1")
	s.Host, s.RebuildSeq, s.TaskState = "n2", 1, "rebuilding"
	w.Put("compute_servers", &s)
	before := len(w.reports)
	fresh.reconcile(ctx)
	if o := w.last(); o.Status != "ACTIVE" || o.RebuildSeq != 1 || o.Node != "n2" {
		t.Fatalf("the new host's report: %+v", o)
	}
	spec, _ := hostB.Spec("s1")
	if len(spec.Disks) == 0 || spec.Disks[0].NBDExport != vol || len(exB.exported) == 0 || w.opens != 0 {
		t.Fatalf("evacuated guest's disks %+v, exported %v, images opened %d", spec.Disks, exB.exported, w.opens)
	}
	if _, err := os.Stat(filepath.Join(fresh.Dir, "instances", "s1", "disk")); !os.IsNotExist(err) {
		t.Fatalf("a local disk made for a server booted from a volume: %v", err)
	}
	// n1 back: its guest goes, and it reports nothing of the server.
	before = len(w.reports)
	old.reconcile(ctx)
	if _, err := old.Driver.Adopt(ctx, "s1"); err == nil {
		t.Fatal("the node the server was evacuated from still runs its guest")
	}
	if _, err := os.Stat(filepath.Join(old.Dir, "instances", "s1")); !os.IsNotExist(err) {
		t.Fatalf("the old node kept the server's directory: %v", err)
	}
	if len(w.reports) != before {
		t.Fatalf("the old node reported the server: %+v", w.reports[before:])
	}
	if st, _ := mustAdopt(t, fresh, "s1").State(ctx); st != hypervisor.Running {
		t.Fatalf("guest on the new host %s after the old one came back", st)
	}
}
