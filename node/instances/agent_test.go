package instances

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// world is the replicated state as the agent reads it, which the test
// writes directly, and the node's side effects.
type world struct {
	*store.MemState
	t        *testing.T
	mu       sync.Mutex
	reports  []computestate.Observed
	opens    int
	imageErr error
	taps     map[string]bool
}

func newWorld(t *testing.T) *world {
	return &world{MemState: store.NewMemState(t, computestate.Schema(), netstate.Schema(), volstate.Schema(), imagestate.Schema()), t: t, taps: map[string]bool{}}
}

func (w *world) server(id string) computestate.Server {
	raw, err := w.DB.Txn(false).First("compute_servers", "id", id)
	if err != nil || raw == nil {
		w.t.Fatalf("server %s: %v", id, err)
	}
	return *raw.(*computestate.Server)
}

// Report applies what Nova's report does to the fields the agent reads.
func (w *world) Report(_ context.Context, id string, o computestate.Observed) error {
	w.mu.Lock()
	w.reports = append(w.reports, o)
	w.mu.Unlock()
	tx := w.DB.Txn(true)
	defer tx.Commit()
	raw, _ := tx.First("compute_servers", "id", id)
	if raw == nil {
		return errors.New("no such server")
	}
	s := *raw.(*computestate.Server)
	if o.Gone {
		return tx.Delete("compute_servers", &s)
	}
	byItself := o.Status == "SHUTOFF" && s.Want == "active" && s.VMState == "active" && s.TaskState == ""
	s.Status, s.PowerState, s.TaskState = o.Status, o.PowerState, ""
	if byItself {
		s.Want = "stopped" // as the FSM records a guest that stopped on its own
	}
	switch o.Status {
	case "ACTIVE":
		s.VMState = "active"
	case "SHUTOFF":
		s.VMState = "stopped"
	case "ERROR":
		s.VMState = "error"
	}
	return tx.Insert("compute_servers", &s)
}

func (w *world) last() computestate.Observed {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.reports) == 0 {
		return computestate.Observed{}
	}
	return w.reports[len(w.reports)-1]
}

var imageBytes = bytes.Repeat([]byte("rackstack"), 1<<12)

func (w *world) Open(_ context.Context, id string) (io.ReadCloser, imagestate.Image, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.opens++
	if w.imageErr != nil {
		return nil, imagestate.Image{}, w.imageErr
	}
	sha, sum := sha512.Sum512(imageBytes), md5.Sum(imageBytes)
	return io.NopCloser(bytes.NewReader(imageBytes)), imagestate.Image{
		ID: id, Status: "active", DiskFormat: "raw", Size: int64(len(imageBytes)),
		HashValue: hex.EncodeToString(sha[:]), Checksum: hex.EncodeToString(sum[:]),
	}, nil
}

func (w *world) Ensure(name string) error {
	w.mu.Lock()
	w.taps[name] = true
	w.mu.Unlock()
	return nil
}
func (w *world) Remove(name string) error {
	w.mu.Lock()
	delete(w.taps, name)
	w.mu.Unlock()
	return nil
}

func TestAgentLifecycle(t *testing.T) {
	needTools(t)
	w := newWorld(t)
	host := hypervisor.NewFakeHost(t.TempDir())
	a := newAgent(t, w, host, t.TempDir(), &logs{})
	ctx := context.Background()

	w.Put("network_networks", &netstate.Network{ID: "net1", Project: "p1", Name: "net1", SegmentationID: 101, MTU: 1500})
	for _, p := range []string{"port1-aaaaaaaa", "port2-bbbbbbbb"} {
		w.Put("network_ports", &netstate.Port{ID: p, Project: "p1", NetworkID: "net1", MAC: "fa:16:3e:00:00:0" + p[4:5]})
	}
	flavor := computestate.Flavor{ID: "f1", VCPUs: 1, RAM: 256, Disk: 1}
	w.Put("compute_servers", &computestate.Server{ID: "s1", Project: "p1", Name: "vm1", Host: "n1", ImageID: "img1", Flavor: flavor, RootGB: 1,
		Ports: []string{"port1-aaaaaaaa"}, Want: "active", VMState: "building", TaskState: "spawning",
		PublicKey: "ssh-ed25519 AAAA k", KeyName: "k", UserData: "IyEvYmluL3NoCmVjaG8gaGkK"})
	w.Put("compute_servers", &computestate.Server{ID: "s2", Project: "p1", Name: "vm2", Host: "n1", ImageID: "img1", Flavor: flavor, RootGB: 1,
		Ports: []string{"port2-bbbbbbbb"}, Want: "active", VMState: "building", TaskState: "spawning"})
	w.Put("compute_servers", &computestate.Server{ID: "elsewhere", Project: "p1", Host: "n2", ImageID: "img1", Flavor: flavor, Want: "active", VMState: "building"})

	a.reconcile(ctx)
	for _, id := range []string{"s1", "s2"} {
		if s := w.server(id); s.Status != "ACTIVE" || s.PowerState != 1 {
			t.Fatalf("%s after build: %s power %d (reports %+v)", id, s.Status, s.PowerState, w.reports)
		}
	}
	if ids, _ := a.Driver.List(ctx); !slices.Equal(ids, []string{"s1", "s2"}) {
		t.Fatalf("guests %v, want s1 s2 (not the server placed on n2)", ids)
	}
	if w.opens != 1 {
		t.Errorf("image fetched %d times, want once (cached)", w.opens)
	}
	spec, _ := host.Spec("s1")
	if spec.MemoryMB != 256 || len(spec.NICs) != 1 || spec.NICs[0].Tap != "tapport1-aaaaa" || spec.NICs[0].MAC != "fa:16:3e:00:00:01" || spec.ConfigDrive == "" {
		t.Errorf("spec of s1: %+v", spec)
	}
	if !w.taps["tapport1-aaaaa"] || !w.taps["tapport2-bbbbb"] {
		t.Errorf("taps %v", w.taps)
	}
	if out, err := exec.Command("qemu-img", "info", spec.Disks[0].Path).CombinedOutput(); err != nil || !bytes.Contains(out, []byte("backing file")) {
		t.Errorf("root disk is not an overlay on the cached image: %v\n%s", err, out)
	}

	// Stop.
	s := w.server("s1")
	s.Want, s.TaskState = "stopped", "powering-off"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if st, _ := mustAdopt(t, a, "s1").State(ctx); st != hypervisor.Shutdown || w.server("s1").Status != "SHUTOFF" {
		t.Fatalf("after stop: guest %s, server %s", st, w.server("s1").Status)
	}
	// Start again.
	s = w.server("s1")
	s.Want, s.TaskState = "active", "powering-on"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if st, _ := mustAdopt(t, a, "s1").State(ctx); st != hypervisor.Running || w.server("s1").Status != "ACTIVE" {
		t.Fatalf("after start: guest %s, server %s", st, w.server("s1").Status)
	}
	// Reboot: completed and reported by its sequence number.
	s = w.server("s1")
	s.RebootSeq, s.RebootHard, s.TaskState = 1, true, "rebooting_hard"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if o := w.last(); o.RebootSeq != 1 || o.Status != "ACTIVE" {
		t.Fatalf("after reboot: %+v", o)
	}
	// A guest that died on its own is reported, not restarted.
	host.SetState("s2", hypervisor.Shutdown)
	a.reconcile(ctx)
	if got := w.server("s2"); got.Status != "SHUTOFF" {
		t.Fatalf("dead guest's server is %s", got.Status)
	}
	// Delete: guest, taps and disks go, and the server is reported gone.
	s = w.server("s1")
	s.Want, s.TaskState = "deleted", "deleting"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if _, err := a.Driver.Adopt(ctx, "s1"); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("deleted server's guest still known: %v", err)
	}
	if w.taps["tapport1-aaaaa"] {
		t.Error("deleted server's tap is still there")
	}
	if _, err := os.Stat(filepath.Join(a.Dir, "instances", "s1")); err == nil {
		t.Error("deleted server's instance directory is still there")
	}
	if raw, _ := w.DB.Txn(false).First("compute_servers", "id", "s1"); raw != nil {
		t.Error("deleted server was not reported gone")
	}
	// A guest with no server (deleted while rackd was down) is removed.
	tx := w.DB.Txn(true)
	tx.Delete("compute_servers", &computestate.Server{ID: "s2"})
	tx.Commit()
	a.reconcile(ctx)
	if ids, _ := a.Driver.List(ctx); len(ids) != 0 {
		t.Errorf("orphan guests left: %v", ids)
	}
	// A build that fails ends in ERROR with the reason, once.
	w.imageErr = errors.New("image store unreachable")
	w.Put("compute_servers", &computestate.Server{ID: "s3", Project: "p1", Name: "vm3", Host: "n1", ImageID: "img2", Flavor: flavor, Want: "active", VMState: "building", TaskState: "spawning"})
	a.reconcile(ctx)
	a.reconcile(ctx)
	if o := w.last(); o.Status != "ERROR" || !bytes.Contains([]byte(o.Fault), []byte("image store unreachable")) {
		t.Fatalf("failed build: %+v", o)
	}
	if w.opens != 2 {
		t.Errorf("a failed build was retried: %d image opens", w.opens)
	}
}

func mustAdopt(t *testing.T, a *Agent, id string) hypervisor.VM {
	t.Helper()
	vm, err := a.Driver.Adopt(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// logs keeps the agent's log records for a test to count.
type logs struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }
func (l *logs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r.Clone())
	l.mu.Unlock()
	return nil
}
func (l *logs) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logs) WithGroup(string) slog.Handler      { return l }

// count is the number of records at level whose message contains msg and
// whose "server" attribute is server.
func (l *logs) count(level slog.Level, msg, server string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.Level != level || !strings.Contains(r.Message, msg) {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "server" && a.Value.String() == server {
				n++
			}
			return true
		})
	}
	return n
}

func newAgent(t *testing.T, w *world, host *hypervisor.FakeHost, dir string, l *logs) *Agent {
	a := &Agent{
		Node: "n1", Dir: dir, State: w.Read, Driver: host.Driver(), Images: w, Taps: w, Report: w.Report,
		Log: slog.New(l), PowerOffGrace: 1,
	}
	a.reported, a.failed, a.pids = map[string]computestate.Observed{}, map[string]string{}, map[string]int{}
	os.MkdirAll(filepath.Join(a.Dir, "instances"), 0o700)
	os.MkdirAll(filepath.Join(a.Dir, "images"), 0o700)
	return a
}

// TestAgentSaysWhatHappensOnce: adoption is logged once per guest, when
// it is news, not every pass; a guest that shuts down or crashes on its
// own is logged once and reported so the server is stopped, the crash
// with why.
func TestAgentSaysWhatHappensOnce(t *testing.T) {
	needTools(t)
	w := newWorld(t)
	host := hypervisor.NewFakeHost(t.TempDir())
	dir := t.TempDir()
	first := &logs{}
	a := newAgent(t, w, host, dir, first)
	ctx := context.Background()
	flavor := computestate.Flavor{ID: "f1", VCPUs: 1, RAM: 256, Disk: 1}
	for _, id := range []string{"s1", "s2"} {
		w.Put("compute_servers", &computestate.Server{ID: id, Project: "p1", Name: id, Host: "n1", ImageID: "img1", Flavor: flavor, RootGB: 1,
			Want: "active", VMState: "building", TaskState: "spawning"})
	}
	a.reconcile(ctx)
	a.reconcile(ctx)
	if n := first.count(slog.LevelInfo, "adopted", "s1"); n != 0 {
		t.Errorf("a guest the agent started itself was logged adopted %d times", n)
	}

	// A restarted rackd finds the guests running: news once.
	second := &logs{}
	a = newAgent(t, w, host, dir, second)
	for range 3 {
		a.reconcile(ctx)
	}
	for _, id := range []string{"s1", "s2"} {
		if n := second.count(slog.LevelInfo, "adopted", id); n != 1 {
			t.Errorf("%s: adoption logged %d times in 3 passes, want once", id, n)
		}
	}

	// s1 shuts itself down.
	host.SetState("s1", hypervisor.Shutdown)
	a.reconcile(ctx)
	a.reconcile(ctx)
	if n := second.count(slog.LevelWarn, "shutdown by itself", "s1"); n != 1 {
		t.Errorf("shutdown by itself logged %d times, want once", n)
	}
	if sv := w.server("s1"); sv.Status != "SHUTOFF" || sv.Want != "stopped" {
		t.Errorf("s1 after shutting itself down: %s, want %s", sv.Status, sv.Want)
	}

	// s2 crashes: reported stopped with why, then the stop ends it.
	host.SetState("s2", hypervisor.Crashed)
	a.reconcile(ctx)
	o := w.last()
	if o.Status != "SHUTOFF" || o.PowerState != computestate.PowerCrashed || !strings.Contains(o.Fault, "crashed") {
		t.Fatalf("crash reported as %+v", o)
	}
	a.reconcile(ctx)
	if st, _ := mustAdopt(t, a, "s2").State(ctx); st != hypervisor.Shutdown {
		t.Errorf("crashed guest left %s, want stopped", st)
	}
	if n := second.count(slog.LevelWarn, "crashed", "s2"); n != 1 {
		t.Errorf("crash logged %d times, want once", n)
	}
}

func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"qemu-img", "genisoimage"} {
		testenv.RequireCommand(t, tool)
	}
}

// TestPurgeTearsDownEveryGuest: rackd dev --purge leaves no guest, tap or
// disk behind, including a guest whose server the state no longer has.
func TestPurgeTearsDownEveryGuest(t *testing.T) {
	needTools(t)
	w := newWorld(t)
	host := hypervisor.NewFakeHost(t.TempDir())
	dir := t.TempDir()
	a := newAgent(t, w, host, dir, &logs{})
	ctx := context.Background()
	flavor := computestate.Flavor{ID: "f1", VCPUs: 1, RAM: 256, Disk: 1}
	for _, id := range []string{"s1", "s2"} {
		w.Put("compute_servers", &computestate.Server{ID: id, Project: "p1", Name: id, Host: "n1", ImageID: "img1", Flavor: flavor, RootGB: 1,
			Want: "active", VMState: "building", TaskState: "spawning"})
	}
	a.reconcile(ctx)
	if err := a.writeRecord("s2", record{Taps: []string{"tap-s2"}}); err != nil {
		t.Fatal(err)
	}
	w.Ensure("tap-s2")
	ids, err := a.Purge(ctx)
	if err != nil || len(ids) != 2 {
		t.Fatalf("purge: %v %v", ids, err)
	}
	if left, _ := host.Driver().List(ctx); len(left) != 0 {
		t.Fatalf("guests left after purge: %v", left)
	}
	if len(w.taps) != 0 {
		t.Fatalf("taps left after purge: %v", w.taps)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "instances")); len(entries) != 0 {
		t.Fatalf("instance dirs left after purge: %v", entries)
	}
}

// TestAgentLeavesBareMetalServersAlone: a bare-metal server's Host is its
// node's conductor, which may be this node; the agent starts no guest,
// makes no tap, fetches no image and reports nothing for it, whatever it
// wants (the conductor reports it).
func TestAgentLeavesBareMetalServersAlone(t *testing.T) {
	w := newWorld(t)
	host := hypervisor.NewFakeHost(t.TempDir())
	a := newAgent(t, w, host, t.TempDir(), &logs{})
	ctx := context.Background()
	flavor := computestate.Flavor{ID: "bm", VCPUs: 1, RAM: 1, Disk: 1, ExtraSpecs: map[string]string{"resources:CUSTOM_BAREMETAL": "1"}}
	w.Put("network_networks", &netstate.Network{ID: "net1", Project: "p1", Name: "net1", SegmentationID: 101, MTU: 1500})
	w.Put("network_ports", &netstate.Port{ID: "port1-aaaaaaaa", Project: "p1", NetworkID: "net1", MAC: "fa:16:3e:00:00:01"})
	w.Put("compute_servers", &computestate.Server{ID: "bm1", Project: "p1", Name: "metal", Host: "n1", Baremetal: "node-1", ImageID: "img1",
		Flavor: flavor, RootGB: 1, Ports: []string{"port1-aaaaaaaa"}, Want: "active", VMState: "building", TaskState: "spawning"})
	w.Put("compute_servers", &computestate.Server{ID: "bm2", Project: "p1", Name: "gone", Host: "n1", Baremetal: "node-2", ImageID: "img1",
		Flavor: flavor, RootGB: 1, Want: "deleted", VMState: "active", TaskState: "deleting"})
	for range 2 {
		a.reconcile(ctx)
	}
	if ids, _ := a.Driver.List(ctx); len(ids) != 0 {
		t.Errorf("guests %v for bare-metal servers", ids)
	}
	if len(w.taps) != 0 || w.opens != 0 || len(w.reports) != 0 {
		t.Errorf("taps %v, image opens %d, reports %+v: want none", w.taps, w.opens, w.reports)
	}
	if s := w.server("bm1"); s.Status != "" || s.TaskState != "spawning" {
		t.Errorf("bare-metal server changed by the servers agent: %+v", s)
	}
	if s := w.server("bm2"); s.Want != "deleted" {
		t.Errorf("deleted bare-metal server changed by the servers agent: %+v", s)
	}
}

// bootExports is the volume agent's exports as the servers agent sees
// them.
type bootExports struct {
	exported, unexported []string
	blank                map[string]bool
}

func (b *bootExports) Export(_ context.Context, id string) (int64, error) {
	b.exported = append(b.exported, id)
	return 1 << 30, nil
}
func (b *bootExports) Socket() string { return "/run/test/nbd.sock" }
func (b *bootExports) Unexport(_ context.Context, id string) error {
	b.unexported = append(b.unexported, id)
	return nil
}
func (b *bootExports) Blank(_ context.Context, id string) (bool, error) {
	return b.blank[id], nil
}

// A server booted from a volume gets the volume, exported on this node,
// as its first disk over NBD, and no image is fetched.
func TestServerBootsFromItsVolume(t *testing.T) {
	needTools(t)
	w := newWorld(t)
	host := hypervisor.NewFakeHost(t.TempDir())
	a := newAgent(t, w, host, t.TempDir(), &logs{})
	ex := &bootExports{}
	a.Volumes = ex
	const vol = "71111111-2222-3333-4444-555555555555"
	w.Put("compute_servers", &computestate.Server{ID: "s1", Project: "p1", Name: "vm1", Host: "n1", BootVolume: vol,
		Flavor: computestate.Flavor{ID: "f1", VCPUs: 1, RAM: 256}, Want: "active", VMState: "building", TaskState: "spawning"})
	a.reconcile(context.Background())
	if s := w.server("s1"); s.Status != "ACTIVE" {
		t.Fatalf("after build: %s (reports %+v)", s.Status, w.reports)
	}
	spec, _ := host.Spec("s1")
	root := spec.Disks[0]
	if root.NBDSocket != "/run/test/nbd.sock" || root.NBDExport != vol || root.Path != "" || root.Format != hypervisor.FormatRaw || root.Serial != vol[:20] {
		t.Fatalf("root disk %+v", root)
	}
	if len(ex.exported) == 0 || ex.exported[0] != vol || w.opens != 0 {
		t.Fatalf("exported %v, image opened %d times", ex.exported, w.opens)
	}
}

// A boot volume that is read-only, of a type with a front-end QoS spec,
// is opened read-only and capped from the VM's start.
func TestBootVolumeTakesItsModeAndLimits(t *testing.T) {
	needTools(t)
	w := newWorld(t)
	host := hypervisor.NewFakeHost(t.TempDir())
	a := newAgent(t, w, host, t.TempDir(), &logs{})
	a.Volumes = &bootExports{}
	const vol = "81111111-2222-3333-4444-555555555555"
	w.Put(volstate.QoSTable, &volstate.QoSSpec{ID: "q1", Name: "cap", Consumer: volstate.ConsumerFrontEnd,
		Specs: map[string]string{volstate.QoSTotalIOPS: "300"}, Revision: 1})
	w.Put(volstate.TypeTable, &volstate.Type{ID: "t1", Name: "capped", Public: true, QoSSpecID: "q1", Revision: 1})
	w.Put(volstate.VolumeTable, &volstate.Volume{ID: vol, Project: "p1", Size: 1, TypeID: "t1", Status: volstate.StatusAttaching,
		Attachments: []volstate.Attachment{{ID: "s1", ServerID: "s1", Host: "n1", Root: true, Mode: volstate.AttachReadOnly}}, Revision: 1})
	w.Put("compute_servers", &computestate.Server{ID: "s1", Project: "p1", Name: "vm1", Host: "n1", BootVolume: vol,
		Flavor: computestate.Flavor{ID: "f1", VCPUs: 1, RAM: 256}, Want: "active", VMState: "building", TaskState: "spawning"})
	a.reconcile(context.Background())
	spec, _ := host.Spec("s1")
	if root := spec.Disks[0]; !root.ReadOnly || root.Limits != (hypervisor.IOLimits{TotalIOPS: 300}) {
		t.Fatalf("root disk %+v", root)
	}
}

// An encrypted boot volume is opened through QEMU's LUKS layer with its
// key, unsealed here, of its type's cipher; a blank one gets its header
// first. The key is cleared once the VM has it. A node that cannot open
// keys fails the build rather than boot ciphertext.
func TestEncryptedBootVolumeIsOpenedWithItsKey(t *testing.T) {
	needTools(t)
	for _, blank := range []bool{false, true} {
		w := newWorld(t)
		host := hypervisor.NewFakeHost(t.TempDir())
		a := newAgent(t, w, host, t.TempDir(), &logs{})
		const vol = "91111111-2222-3333-4444-555555555555"
		a.Volumes = &bootExports{blank: map[string]bool{vol: blank}}
		var given []byte
		a.Unseal = func(sealed string, aad []byte) ([]byte, error) {
			if sealed != "sealed-key" || string(aad) != vol {
				return nil, errors.New("not this volume's key")
			}
			given = []byte("the passphrase")
			return given, nil
		}
		w.Put(volstate.TypeTable, &volstate.Type{ID: "t1", Name: "secret", Public: true, Revision: 1,
			Encryption: &volstate.Encryption{ID: "e1", Provider: "luks", Cipher: "aes-xts-plain64", KeySize: 256, ControlLocation: "front-end"}})
		w.Put(volstate.VolumeTable, &volstate.Volume{ID: vol, Project: "p1", Size: 1, TypeID: "t1", Status: volstate.StatusAttaching, Key: "sealed-key",
			Attachments: []volstate.Attachment{{ID: "s1", ServerID: "s1", Host: "n1", Root: true}}, Revision: 1})
		w.Put("compute_servers", &computestate.Server{ID: "s1", Project: "p1", Name: "vm1", Host: "n1", BootVolume: vol,
			Flavor: computestate.Flavor{ID: "f1", VCPUs: 1, RAM: 256}, Want: "active", VMState: "building", TaskState: "spawning"})
		a.reconcile(context.Background())
		if s := w.server("s1"); s.Status != "ACTIVE" {
			t.Fatalf("after build: %s (reports %+v)", s.Status, w.reports)
		}
		spec, _ := host.Spec("s1")
		root := spec.Disks[0]
		if e := root.Encryption; e == nil || e.CipherAlg != "aes-128" || e.Format != blank || root.ID != "911111112222333344445555" {
			t.Fatalf("root disk %+v, encryption %+v", root, e)
		}
		if !bytes.Equal(given, make([]byte, len(given))) {
			t.Fatalf("the passphrase was left in memory: %q", given)
		}
	}

	w := newWorld(t)
	host := hypervisor.NewFakeHost(t.TempDir())
	a := newAgent(t, w, host, t.TempDir(), &logs{})
	const vol = "a1111111-2222-3333-4444-555555555555"
	a.Volumes = &bootExports{}
	w.Put(volstate.VolumeTable, &volstate.Volume{ID: vol, Project: "p1", Size: 1, TypeID: volstate.DefaultTypeID, Status: volstate.StatusAttaching, Key: "sealed-key",
		Attachments: []volstate.Attachment{{ID: "s2", ServerID: "s2", Host: "n1", Root: true}}, Revision: 1})
	w.Put("compute_servers", &computestate.Server{ID: "s2", Project: "p1", Name: "vm2", Host: "n1", BootVolume: vol,
		Flavor: computestate.Flavor{ID: "f1", VCPUs: 1, RAM: 256}, Want: "active", VMState: "building", TaskState: "spawning"})
	a.reconcile(context.Background())
	if s := w.server("s2"); s.Status != "ERROR" {
		t.Fatalf("built without a way to open the key: %s", s.Status)
	}
	if _, ok := host.Spec("s2"); ok {
		t.Fatal("a VM was started on an encrypted volume without its key")
	}
}

// oneGuestAgent is an agent running one guest, s1 (image img1, the
// flavor given, a 1 GiB root disk, one port on net1), with its world
// and the fake host it runs on.
func oneGuestAgent(t *testing.T, flavor computestate.Flavor) (*world, *Agent, *hypervisor.FakeHost) {
	t.Helper()
	w := newWorld(t)
	host := hypervisor.NewFakeHost(t.TempDir())
	a := newAgent(t, w, host, t.TempDir(), &logs{})
	w.Put("network_networks", &netstate.Network{ID: "net1", Project: "p1", Name: "net1", SegmentationID: 101, MTU: 1500})
	w.Put("network_ports", &netstate.Port{ID: "port1-aaaaaaaa", Project: "p1", NetworkID: "net1", MAC: "fa:16:3e:00:00:01"})
	w.Put("compute_servers", &computestate.Server{ID: "s1", Project: "p1", Name: "vm1", Host: "n1", ImageID: "img1", Flavor: flavor, RootGB: 1,
		Ports: []string{"port1-aaaaaaaa"}, Want: "active", VMState: "building", TaskState: "spawning"})
	a.reconcile(context.Background())
	return w, a, host
}
