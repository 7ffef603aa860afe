//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// Two `rackd dev` on one host, in one dataplane namespace: the first owns
// the public network's and the metadata service's veth pairs; the second
// is refused them at start, saying what to pass, runs with --public off
// and no metadata service of its own, and its purge leaves the first's
// pairs (and so its public network) in place. The first's purge removes
// them.
func TestDevCloudsShareAHost(t *testing.T) {
	testenv.RequireRoot(t, "load BPF programs and make veth pairs")
	ns := nsName("dl")
	path := addNetns(t, ns)
	bpfDir := fmt.Sprintf("/sys/fs/bpf/rackstack-dl%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll(bpfDir) })
	dev := func(name string) *rackd {
		r := newRackd(t, name, "--dataplane", "on", "--dataplane-netns", path, "--bpf-dir", bpfDir+"/"+name, "--s3-listen", "off")
		r.args = append([]string{"dev"}, r.args...)
		return r
	}
	purge := func(r *rackd) string {
		t.Helper()
		out, err := exec.Command(filepath.Join(binDir, "rackd"), "dev", "--purge", "--name", r.name, "--data-dir", r.dataDir,
			"--bpf-dir", bpfDir+"/"+r.name, "--dataplane-netns", path).CombinedOutput()
		if err != nil {
			t.Fatalf("purge %s: %v\n%s", r.name, err, out)
		}
		return string(out)
	}
	links := func() string {
		t.Helper()
		out, err := exec.Command("ip", "-n", ns, "-o", "link").CombinedOutput()
		if err != nil {
			t.Fatalf("ip link: %v\n%s", err, out)
		}
		return string(out)
	}
	ownedBy := func(r *rackd) {
		t.Helper()
		l := links()
		for _, name := range []string{"rspub0", "rsmeta0h"} {
			line := ""
			for _, s := range strings.Split(l, "\n") {
				if strings.Contains(s, " "+name+"@") {
					line = s
				}
			}
			if !strings.Contains(line, "alias rackstack dev cloud "+r.dataDir) {
				t.Fatalf("%s is not %s's:\n%s", name, r.name, l)
			}
		}
	}

	a := dev("dla")
	a.start()
	a.waitHealthy()
	ownedBy(a)

	b := dev("dlb")
	b.start()
	err, log := b.waitExit(2 * time.Minute)
	if err == nil || !strings.Contains(log, "rspub0 belongs to the rackd running on "+a.dataDir) ||
		!strings.Contains(log, "pass --public off") || !strings.Contains(log, "--dataplane-netns") {
		t.Fatalf("a second dev cloud with a public network in the namespace: exit %v; log:\n%s", err, log)
	}
	b.start("--public", "off")
	b.waitHealthy()
	if l := b.log(); !strings.Contains(l, "no metadata service on this node") || !strings.Contains(l, "rsmeta0h belongs to the rackd running on "+a.dataDir) {
		t.Fatalf("b's log does not say why it has no metadata service:\n%s", l)
	}
	ownedBy(a)
	b.kill()
	if out := purge(b); !strings.Contains(out, "left link rspub0") || !strings.Contains(out, "left link rsmeta0h") || strings.Contains(out, "removed link") {
		t.Fatalf("purge of the second dev cloud:\n%s", out)
	}
	ownedBy(a)
	a.waitHealthy()

	a.kill()
	if out := purge(a); !strings.Contains(out, "removed link rspub0") || !strings.Contains(out, "removed link rsmeta0h") {
		t.Fatalf("purge of the first dev cloud:\n%s", out)
	}
	if l := links(); strings.Contains(l, "rspub0") || strings.Contains(l, "rsmeta0") {
		t.Fatalf("links left after both purges:\n%s", l)
	}
}
