//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// benchResult is one entry of rackbench -o json.
type benchResult struct {
	Suite  string         `json:"suite"`
	Case   string         `json:"case"`
	Params map[string]any `json:"params"`
	Metric string         `json:"metric"`
	Unit   string         `json:"unit"`
	Median float64        `json:"median"`
	Runs   []float64      `json:"runs"`
}

// cloudLeftovers is what a rackbench run may make: rackbench projects,
// EC2 credentials, containers and stored parts anywhere, block volumes.
type cloudLeftovers struct {
	benchProjects []string
	credentials   int
	parts         int
	volumes       int
}

func leftovers(t *testing.T, creds map[string]string, n *rackd) cloudLeftovers {
	t.Helper()
	tok := token(t, n, creds["OS_USERNAME"], creds["OS_PASSWORD"], creds["OS_PROJECT_NAME"])
	var ps struct {
		Projects []struct{ ID, Name string } `json:"projects"`
	}
	if code, err := call("GET", n.url()+"/identity/v3/projects", tok, nil, &ps); err != nil || code != 200 {
		t.Fatalf("list projects: %d %v", code, err)
	}
	var out cloudLeftovers
	for _, p := range ps.Projects {
		if strings.HasPrefix(p.Name, "rackbench-") {
			out.benchProjects = append(out.benchProjects, p.Name)
		}
	}
	var cs struct {
		Credentials []struct{ ID string } `json:"credentials"`
	}
	if code, err := call("GET", n.url()+"/identity/v3/credentials", tok, nil, &cs); err != nil || code != 200 {
		t.Fatalf("list credentials: %d %v", code, err)
	}
	out.credentials = len(cs.Credentials)
	st, err := storageStatusOf(t, creds, n)
	if err != nil {
		t.Fatal(err)
	}
	out.parts = st.Parts
	out.volumes = st.Volumes.Volumes
	return out
}

// rackbench runs the rackbench binary with env and returns stdout and
// stderr; ten minutes bound it.
func rackbench(env []string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "rackbench"), args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// TestRackbenchCloud points rackbench at a running three-node cloud: the
// storage suite measures every case through every node's S3 endpoint and
// Swift and leaves nothing behind, also when interrupted; clean removes
// what a killed run left; the HTML report renders in Chromium.
func TestRackbenchCloud(t *testing.T) {
	testenv.RequireRoot(t, "make network namespaces and load BPF programs for the dataplane case")
	testenv.RequireCommand(t, "/usr/bin/chromium")
	testenv.RequireCommand(t, "ip")
	testenv.RequireCommand(t, "fio")
	// n1 and n2 run a dataplane each in a namespace of its own, as nodes
	// would on their hosts, joined by a veth "wire" as their uplink; n3
	// none.
	n1ns, n2ns := nsName("bn1"), nsName("bn2")
	n1path, n2path := addNetns(t, n1ns), addNetns(t, n2ns)
	ip(t, "-n", n1ns, "link", "add", "up0", "type", "veth", "peer", "name", "up0", "netns", n2ns)
	ip(t, "-n", n1ns, "link", "set", "up0", "up")
	ip(t, "-n", n2ns, "link", "set", "up0", "up")
	bpfDir := fmt.Sprintf("/sys/fs/bpf/rackstack-bench%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll(bpfDir) })
	dp := func(nsPath, name string) []string {
		return []string{"--dataplane", "on", "--dataplane-netns", nsPath, "--uplink", "up0", "--bpf-dir", bpfDir + "/" + name}
	}
	n1 := newStorageNode(t, "n1", 3, dp(n1path, "n1")...)
	n1.start("--bootstrap")
	n1.waitHealthy()
	creds := openrc(t, n1.dataDir)
	var n2 *storageNode
	out, err := rackctl(t, creds, n1.rackd, "cluster", "join-token", "create", "--uses", "2", "-o", "json")
	if err != nil {
		t.Fatalf("join-token: %v %s", err, out)
	}
	var jt struct {
		Token string `json:"token"`
	}
	json.Unmarshal([]byte(out), &jt)
	// n2 and n3 join at once; the leader adds them one at a time.
	var joined []*storageNode
	for _, name := range []string{"n2", "n3"} {
		args := []string{"--join", n1.url(), "--join-token", jt.Token}
		if name == "n2" {
			args = append(args, dp(n2path, "n2")...)
		}
		n := newStorageNode(t, name, 3, args...)
		n.start()
		joined = append(joined, n)
		if name == "n2" {
			n2 = n
		}
	}
	for _, n := range joined {
		n.waitHealthy()
	}
	waitStorage(t, creds, n1.rackd, "nine disks, 4+2", time.Minute, func(s storageStatus) bool {
		return len(s.Disks) == 9 && s.K == 4 && s.M == 2
	})
	before := leftovers(t, creds, n1.rackd)
	env := osEnv(creds, n1.rackd)
	checkClean := func(when string) {
		t.Helper()
		// Deleted objects' blobs go to the garbage list; their parts leave
		// the count at once.
		after := leftovers(t, creds, n1.rackd)
		if len(after.benchProjects) != 0 || after.credentials != before.credentials || after.parts != before.parts || after.volumes != before.volumes {
			t.Fatalf("%s: left behind: projects %v, credentials %d (before %d), parts %d (before %d), volumes %d (before %d)",
				when, after.benchProjects, after.credentials, before.credentials, after.parts, before.parts, after.volumes, before.volumes)
		}
	}

	// Every case, through the S3 endpoints of all three nodes and Swift.
	stdout, stderr, err := rackbench(env, "storage", "--cloud", "--nodes", "n1,n2,n3", "--sizes", "4KiB,1MiB", "--concurrency", "1,8",
		"--runs", "1", "--duration", "1s", "-o", "json")
	if err != nil {
		t.Fatalf("rackbench storage --cloud: %v\n%s", err, stderr)
	}
	if strings.Contains(stderr, "case 1 of") {
		t.Errorf("progress shown with -o json to a pipe:\n%s", stderr)
	}
	var rs []benchResult
	if err := json.Unmarshal([]byte(stdout), &rs); err != nil {
		t.Fatalf("decode results: %v\n%s", err, stdout)
	}
	got := map[string]benchResult{}
	for _, r := range rs {
		got[fmt.Sprintf("%v %v %v %s", r.Params["api"], r.Params["object"], r.Params["concurrency"], r.Metric)] = r
		if r.Params["nodes"] != "n1,n2,n3" || r.Params["coding"] != "4+2" {
			t.Errorf("result %s %v: params do not name the nodes and coding", r.Metric, r.Params)
		}
	}
	for _, api := range []string{"s3", "swift"} {
		for _, size := range []string{"4KiB", "1MiB"} {
			for _, conc := range []int{1, 8} {
				for _, m := range []string{"put_throughput", "put_ops", "put_p50", "put_p99", "get_throughput", "get_ops", "get_p50", "get_p99", "delete_ops", "delete_p50", "delete_p99"} {
					k := fmt.Sprintf("%s %s %d %s", api, size, conc, m)
					r, ok := got[k]
					if !ok || len(r.Runs) != 1 || r.Median <= 0 {
						t.Errorf("%s: %+v (present %v)", k, r, ok)
					}
				}
			}
		}
	}
	checkClean("after a run")
	first := filepath.Join(t.TempDir(), "first.json")
	os.WriteFile(first, []byte(stdout), 0o644)

	// Ctrl-C in the middle: the run removes what it made and exits.
	cmd := exec.Command(filepath.Join(binDir, "rackbench"), "storage", "--cloud", "--sizes", "1MiB", "--concurrency", "4", "--runs", "5", "--duration", "3s", "-o", "json")
	cmd.Env = env
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitBenchProject(t, creds, n1.rackd)
	time.Sleep(2 * time.Second) // into the PUT phase: objects exist
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("an interrupted run exited 0")
		}
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("rackbench did not exit within 3 minutes of SIGINT:\n%s", errBuf.String())
	}
	checkClean("after SIGINT")

	// A killed run leaves its project; clean --cloud, here with
	// --os-cloud from clouds.yaml, removes it.
	cmd = exec.Command(filepath.Join(binDir, "rackbench"), "storage", "--cloud", "--sizes", "1MiB", "--concurrency", "4", "--runs", "5", "--duration", "3s", "-o", "json")
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitBenchProject(t, creds, n1.rackd)
	time.Sleep(2 * time.Second)
	cmd.Process.Kill()
	cmd.Wait()
	if l := leftovers(t, creds, n1.rackd); len(l.benchProjects) != 1 {
		t.Fatalf("a killed run left projects %v, want its one", l.benchProjects)
	}
	cloudsYAML := filepath.Join(t.TempDir(), "clouds.yaml")
	os.WriteFile(cloudsYAML, []byte(fmt.Sprintf("clouds:\n  rack:\n    auth:\n      auth_url: %s/identity/v3\n      username: %s\n      password: %s\n      project_name: %s\n      user_domain_name: Default\n      project_domain_name: Default\n",
		n2url(t, creds, n1.rackd), creds["OS_USERNAME"], creds["OS_PASSWORD"], creds["OS_PROJECT_NAME"])), 0o600)
	yamlEnv := []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "OS_CLIENT_CONFIG_FILE=" + cloudsYAML}
	if stdout, stderr, err := rackbench(yamlEnv, "clean", "--cloud", "--os-cloud", "rack"); err != nil || !strings.Contains(stdout, "removed rackbench-") {
		t.Fatalf("clean --cloud: %v\n%s%s", err, stdout, stderr)
	}
	checkClean("after clean")
	if stdout, _, err := rackbench(yamlEnv, "clean", "--cloud", "--os-cloud", "rack"); err != nil || !strings.Contains(stdout, "nothing to remove") {
		t.Fatalf("second clean: %v\n%s", err, stdout)
	}

	// A volume of the block store exported on n2, asked through n1: every
	// fio job has a result, and the volume and its export are gone after.
	stdout, stderr, err = rackbench(env, "block", "--cloud", "--node", "n2", "--size", "16MiB", "--runs", "1", "--duration", "1s", "-o", "json")
	if err != nil {
		t.Fatalf("rackbench block --cloud: %v\n%s", err, stderr)
	}
	rs = nil
	if err := json.Unmarshal([]byte(stdout), &rs); err != nil {
		t.Fatalf("decode block results: %v\n%s", err, stdout)
	}
	got = map[string]benchResult{}
	for _, r := range rs {
		got[fmt.Sprintf("%s %v", r.Metric, r.Params["qd"])] = r
		if r.Case != "rackstack-cloud" || r.Params["node"] != "n2" {
			t.Errorf("block result %s %v: case %q, want rackstack-cloud on n2", r.Metric, r.Params, r.Case)
		}
	}
	for _, k := range []string{"seq_write 8", "seq_read 8", "randread_iops 1", "randread_iops 32", "randwrite_iops 1", "randwrite_iops 32"} {
		if r, ok := got[k]; !ok || len(r.Runs) != 1 || r.Median <= 0 {
			t.Errorf("block %s: %+v (present %v)", k, r, ok)
		}
	}
	t.Logf("block on n2: %s", stdout)
	checkClean("after the block run")
	_, vol, _ := strings.Cut(stderr, "volume rackbench-")
	vol, _, _ = strings.Cut(vol, " ")
	if vol = "rackbench-" + vol; vol == "rackbench-" {
		t.Fatalf("no volume named in the log:\n%s", stderr)
	}
	tok := token(t, n1.rackd, creds["OS_USERNAME"], creds["OS_PASSWORD"], creds["OS_PROJECT_NAME"])
	if code, err := call("DELETE", n2url(t, creds, n1.rackd)+"/rackstack/v1/volumes/"+vol+"/export", tok, nil, nil); code != http.StatusNotFound {
		t.Errorf("unexport %s on n2 after the run: HTTP %d %v, want 404 (not exported)", vol, code, err)
	}

	// Tenant traffic between two bench ports: within n1, asked through n2
	// (which forwards to n1 over the peer port); and from n1 to n2 over
	// the uplink with the network's VLAN.
	netBefore := networkObjects(t, creds, n1.rackd)
	dpBefore := map[string]map[string]int{"n1": dataplaneEntries(t, creds, n1.rackd, "n1"), "n2": dataplaneEntries(t, creds, n1.rackd, "n2")}
	for _, c := range []struct{ from, to, path string }{{"n1", "n1", "local"}, {"n1", "n2", "vlan"}} {
		stdout, stderr, err = rackbench(osEnv(creds, n2.rackd), "dataplane", "--cloud", "--from", c.from, "--to", c.to, "--rules", "0,100",
			"--runs", "1", "--duration", "1s", "-o", "json")
		if err != nil {
			t.Fatalf("rackbench dataplane --cloud --from %s --to %s: %v\n%s", c.from, c.to, err, stderr)
		}
		rs = nil
		if err := json.Unmarshal([]byte(stdout), &rs); err != nil {
			t.Fatalf("decode dataplane results: %v\n%s", err, stdout)
		}
		got = map[string]benchResult{}
		for _, r := range rs {
			got[fmt.Sprintf("%s %v %v", r.Metric, r.Params["rules"], r.Params["streams"])] = r
			if r.Params["path"] != c.path {
				t.Errorf("%s to %s, %s: path %v, want %s", c.from, c.to, r.Metric, r.Params["path"], c.path)
			}
		}
		for _, rules := range []int{0, 100} {
			for _, k := range []string{"tcp_stream %d 1", "tcp_stream %d 4", "tcp_rr %d <nil>", "tcp_crr %d <nil>"} {
				k = fmt.Sprintf(k, rules)
				if r, ok := got[k]; !ok || len(r.Runs) != 1 || r.Median <= 0 {
					t.Errorf("dataplane %s to %s, %s: %+v (present %v)", c.from, c.to, k, r, ok)
				}
			}
		}
		t.Logf("dataplane %s→%s: %s", c.from, c.to, stdout)
		checkClean("after the dataplane run " + c.from + " to " + c.to)
		if after := networkObjects(t, creds, n1.rackd); after != netBefore {
			t.Errorf("network objects before %+v, after %+v", netBefore, after)
		}
		for _, n := range []string{"n1", "n2"} {
			if after := dataplaneEntries(t, creds, n1.rackd, n); fmt.Sprint(after) != fmt.Sprint(dpBefore[n]) {
				t.Errorf("%s's dataplane map entries before %v, after %v", n, dpBefore[n], after)
			}
		}
		if ns, _ := filepath.Glob("/run/netns/rackbench-*"); len(ns) != 0 {
			t.Errorf("bench namespaces left: %v", ns)
		}
	}

	// The HTML report beside the first run, rendered by Chromium.
	buildDir, _ := filepath.Abs("../build")
	os.MkdirAll(buildDir, 0o755)
	report := filepath.Join(buildDir, "rackbench-cloud-report.html")
	if _, stderr, err := rackbench(yamlEnv, "storage", "--cloud", "--os-cloud", "rack", "--sizes", "4KiB,1MiB", "--concurrency", "1", "--runs", "1", "--duration", "1s",
		"-o", "html", report, "--compare", first); err != nil {
		t.Fatalf("-o html: %v\n%s", err, stderr)
	}
	checkClean("after the report's run")
	shot := filepath.Join(buildDir, "rackbench-cloud-report.png")
	os.Remove(shot)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	chrome := exec.CommandContext(ctx, "/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir="+t.TempDir(), "--window-size=1200,1600", "--screenshot="+shot, "file://"+report)
	if out, err := chrome.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// The first chart's bars of this run are drawn in the palette's first
	// colour (#2b6cb0) and the previous run's in its second (#dd6b20).
	for _, c := range [][3]uint32{{0x2b, 0x6c, 0xb0}, {0xdd, 0x6b, 0x20}} {
		if !hasColour(img, c) {
			t.Errorf("the screenshot %s has no pixel of colour %02x%02x%02x: the bars did not render", shot, c[0], c[1], c[2])
		}
	}
}

func hasColour(img image.Image, c [3]uint32) bool {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r>>8 == c[0] && g>>8 == c[1] && bl>>8 == c[2] {
				return true
			}
		}
	}
	return false
}

// waitBenchProject waits until a rackbench run has made its project.
func waitBenchProject(t *testing.T, creds map[string]string, n *rackd) {
	t.Helper()
	for i := 0; i < 300; i++ {
		if len(leftovers(t, creds, n).benchProjects) > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no rackbench project appeared within 30s")
}

// n2url is the API of a node other than n, to show clouds.yaml may point
// at any node.
func n2url(t *testing.T, creds map[string]string, n *rackd) string {
	t.Helper()
	out, err := rackctl(t, creds, n, "node", "list", "-o", "json")
	if err != nil {
		t.Fatalf("node list: %v %s", err, out)
	}
	var list struct {
		Nodes []struct {
			Name   string `json:"name"`
			APIURL string `json:"api_url"`
		} `json:"nodes"`
	}
	json.Unmarshal([]byte(out), &list)
	for _, x := range list.Nodes {
		if x.Name == "n2" {
			return x.APIURL
		}
	}
	t.Fatalf("no n2 in %s", out)
	return ""
}

// netObjects counts the cloud's networks, ports and security groups.
type netObjects struct{ networks, ports, groups int }

func networkObjects(t *testing.T, creds map[string]string, n *rackd) netObjects {
	t.Helper()
	tok := token(t, n, creds["OS_USERNAME"], creds["OS_PASSWORD"], creds["OS_PROJECT_NAME"])
	count := func(path, key string) int {
		var out map[string][]json.RawMessage
		if code, err := call("GET", n.url()+"/network/v2.0/"+path, tok, nil, &out); err != nil || code != 200 {
			t.Fatalf("list %s: %d %v", path, code, err)
		}
		return len(out[key])
	}
	return netObjects{count("networks", "networks"), count("ports", "ports"), count("security-groups", "security_groups")}
}

// dataplaneEntries is the number of entries in each of a node's
// dataplane maps but conntrack (an LRU that ages on its own).
func dataplaneEntries(t *testing.T, creds map[string]string, n *rackd, node string) map[string]int {
	t.Helper()
	out, err := rackctl(t, creds, n, "dataplane", "show", "--node", node, "-o", "json")
	if err != nil {
		t.Fatalf("dataplane show: %v %s", err, out)
	}
	var st struct {
		Maps []struct {
			Name    string `json:"name"`
			Entries int    `json:"entries"`
		} `json:"maps"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("dataplane show: %v %s", err, out)
	}
	m := map[string]int{}
	for _, x := range st.Maps {
		if x.Name != "ct" {
			m[x.Name] = x.Entries
		}
	}
	return m
}
