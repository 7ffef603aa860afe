//go:build integration

package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// Fault injection on a real three-node cluster: a mixed workload through
// the real APIs while nodes are killed with SIGKILL, frozen with SIGSTOP
// and restarted, then checks that what was acknowledged is there and
// byte-identical, that what was answered with an unknown outcome is
// either wholly there or not at all, and that every resource settles.

// faultCluster starts three storage nodes (two disk directories each),
// extra added to each one's flags: n1 bootstraps, n2 and n3 join; all
// healthy on return.
func faultCluster(t *testing.T, extra ...string) ([]*storageNode, map[string]string) {
	t.Helper()
	n1 := newStorageNode(t, "n1", 2, extra...)
	n1.start("--bootstrap")
	n1.waitHealthy()
	creds := openrc(t, n1.dataDir)
	jt := joinToken(t, creds, n1.rackd, 2)
	nodes := []*storageNode{n1}
	for _, name := range []string{"n2", "n3"} {
		n := newStorageNode(t, name, 2, append([]string{"--join", n1.url(), "--join-token", jt}, extra...)...)
		n.start()
		nodes = append(nodes, n)
	}
	for _, n := range nodes[1:] {
		n.waitHealthy()
	}
	waitStorage(t, creds, n1.rackd, "six disks", time.Minute, func(s storageStatus) bool { return len(s.Disks) == 6 })
	faultHealthy(t, creds, n1.rackd)
	return nodes, creds
}

// faultHealthy waits until the cluster reports three voters up and no
// problem.
func faultHealthy(t *testing.T, creds map[string]string, via *rackd) clusterStatus {
	t.Helper()
	return waitStatus(t, creds, via, "three healthy voters", func(s clusterStatus) bool {
		if len(s.Members) != 3 || !s.Healthy || len(s.Problems) > 0 || s.Halted != "" {
			return false
		}
		for _, m := range s.Members {
			if m.Suffrage != "voter" || !m.Up {
				return false
			}
		}
		return true
	})
}

// faultProject is the admin's token and project, set up for the load:
// its container made and no quota in the way (the load makes more than
// the defaults allow).
func faultProject(t *testing.T, creds map[string]string, n1 *rackd) (tok, project string) {
	t.Helper()
	tok = token(t, n1, "admin", creds["OS_PASSWORD"], "admin")
	var projects struct {
		Projects []struct{ ID, Name string } `json:"projects"`
	}
	if code, err := call("GET", n1.url()+"/identity/v3/projects?name=admin", tok, nil, &projects); err != nil || code != 200 || len(projects.Projects) != 1 {
		t.Fatalf("admin project: %d %v %+v", code, err, projects)
	}
	project = projects.Projects[0].ID
	if code, err := call("PUT", n1.url()+"/object/v1/AUTH_"+project+"/fault-c", tok, nil, nil); err != nil || code/100 != 2 {
		t.Fatalf("container: %d %v", code, err)
	}
	// No quota stops the load: it makes more than the defaults allow.
	if code, err := call("PUT", n1.url()+"/network/v2.0/quotas/"+project, tok, map[string]any{"quota": map[string]any{
		"network": -1, "subnet": -1, "port": -1, "security_group": -1, "security_group_rule": -1}}, nil); err != nil || code != 200 {
		t.Fatalf("network quotas: %d %v", code, err)
	}
	if code, err := call("PUT", n1.url()+"/volume/v3/"+project+"/os-quota-sets/"+project, tok, map[string]any{"quota_set": map[string]any{
		"volumes": -1, "gigabytes": -1, "snapshots": -1}}, nil); err != nil || code != 200 {
		t.Fatalf("volume quotas: %d %v", code, err)
	}
	return tok, project
}

func nodeNamed(nodes []*storageNode, name string) *storageNode {
	for _, n := range nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// faultLoad is a mixed workload through the real APIs of whichever nodes
// are up, and what it was told.
type faultLoad struct {
	t       *testing.T
	tok     string
	project string

	mu      sync.Mutex
	gen     int // which run: names are unique across runs
	up      map[*rackd]bool
	turn    int
	stop    chan struct{}
	wg      sync.WaitGroup
	acks    map[string]int    // per kind, acknowledged
	unknown map[string]int    // per kind, answered 5xx or cut off
	bad     []string          // answers no fault explains (4xx to a good request)
	last    map[string]string // per kind, the last answer not acknowledged
	nodes   []*storageNode

	objects      map[string]string // acknowledged: name → sha256
	maybeObjects map[string]string // unknown outcome: name → sha256
	volumes      map[string]bool   // acknowledged created and not deleted
	maybeVolumes map[string]bool   // create or delete of unknown outcome
	gone         map[string]bool   // acknowledged deleted
	ports        map[string]bool   // acknowledged created
	projects     map[string]bool   // acknowledged created: name
}

func newFaultLoad(t *testing.T, nodes []*storageNode, tok, project string) *faultLoad {
	l := &faultLoad{t: t, tok: tok, project: project, up: map[*rackd]bool{}, stop: make(chan struct{}),
		acks: map[string]int{}, unknown: map[string]int{}, last: map[string]string{}, nodes: nodes,
		objects: map[string]string{}, maybeObjects: map[string]string{}, volumes: map[string]bool{},
		maybeVolumes: map[string]bool{}, gone: map[string]bool{}, ports: map[string]bool{}, projects: map[string]bool{}}
	for _, n := range nodes {
		l.up[n.rackd] = true
	}
	return l
}

// node is the next node up, in turn.
func (l *faultLoad) node() *rackd {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ups []*rackd
	for n, ok := range l.up {
		if ok {
			ups = append(ups, n)
		}
	}
	sort.Slice(ups, func(i, j int) bool { return ups[i].name < ups[j].name })
	l.turn++
	return ups[l.turn%len(ups)]
}

func (l *faultLoad) setUp(n *rackd, up bool) {
	l.mu.Lock()
	l.up[n] = up
	l.mu.Unlock()
}

// outcome sorts an answer: acknowledged, unknown (5xx, or no answer), or
// refused (anything else, which no fault explains for these requests).
type outcome int

const (
	acked outcome = iota
	unknown
	refused
)

func (l *faultLoad) record(kind, what string, code int, err error, body string) outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil && code >= 200 && code < 300:
		l.acks[kind]++
		return acked
	case err != nil || code >= 500:
		l.unknown[kind]++
		l.last[kind] = fmt.Sprintf("%s: HTTP %d %v %.300s", time.Now().Format("15:04:05.000"), code, err, body)
		return unknown
	case code == 409 && strings.Contains(body, "did not hold the volumes"):
		// A snapshot while a node is down but not yet known to be: it
		// cannot hold the volume for one instant, so none is made.
		l.unknown[kind+" refused"]++
		return refused
	default:
		l.bad = append(l.bad, fmt.Sprintf("%s %s: HTTP %d %v %.300s", kind, what, code, err, body))
		return refused
	}
}

// req sends one request with the load's token to the next node up.
func (l *faultLoad) req(method, path string, body []byte) (int, []byte, error) {
	n := l.node()
	req, err := http.NewRequest(method, n.url()+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Auth-Token", l.tok)
	if strings.HasPrefix(path, "/object/") {
		req.Header.Set("Content-Type", "application/octet-stream")
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

func (l *faultLoad) jsonReq(method, path string, in any, out any) (int, string, error) {
	var raw []byte
	if in != nil {
		raw, _ = json.Marshal(in)
	}
	code, body, err := l.req(method, path, raw)
	if err == nil && out != nil && code >= 200 && code < 300 {
		err = json.Unmarshal(body, out)
	}
	return code, string(body), err
}

// run starts the workers; each loops until stop is closed.
func (l *faultLoad) run() {
	l.mu.Lock()
	l.gen++
	gen := l.gen
	l.mu.Unlock()
	worker := l.worker
	// Objects: sizes from a few bytes to past one erasure-coded part.
	worker(func(i int) {
		size := []int{7, 4 << 10, 300 << 10, 1<<20 + 3}[i%4]
		b := make([]byte, size)
		rand.Read(b)
		name := fmt.Sprintf("fault-c/o%d-%05d", gen, i)
		code, body, err := l.req("PUT", "/object/v1/AUTH_"+l.project+"/"+name, b)
		switch l.record("object", name, code, err, string(body)) {
		case acked:
			l.mu.Lock()
			l.objects[name] = sha(b)
			l.mu.Unlock()
		case unknown:
			l.mu.Lock()
			l.maybeObjects[name] = sha(b)
			l.mu.Unlock()
		}
	})
	// Volumes: create one, delete every other one made.
	worker(func(i int) {
		var v struct {
			Volume struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"volume"`
		}
		code, body, err := l.jsonReq("POST", "/volume/v3/"+l.project+"/volumes", map[string]any{"volume": map[string]any{"size": 1, "name": fmt.Sprintf("fv%d-%04d", gen, i)}}, &v)
		switch l.record("volume create", "", code, err, body) {
		case acked:
			l.mu.Lock()
			l.volumes[v.Volume.ID] = true
			l.mu.Unlock()
		case unknown:
			return
		default:
			return
		}
		if v.Volume.Status != "available" {
			return
		}
		if i%2 == 1 {
			// Kept: snapshotted, and every other snapshot deleted.
			var sn struct {
				Snapshot struct{ ID string } `json:"snapshot"`
			}
			code, body, err = l.jsonReq("POST", "/volume/v3/"+l.project+"/snapshots", map[string]any{"snapshot": map[string]any{"volume_id": v.Volume.ID, "name": fmt.Sprintf("fs%d-%04d", gen, i)}}, &sn)
			if l.record("snapshot", "", code, err, body) == acked && i%4 == 1 {
				code, body, err = l.jsonReq("DELETE", "/volume/v3/"+l.project+"/snapshots/"+sn.Snapshot.ID, nil, nil)
				l.record("snapshot delete", sn.Snapshot.ID, code, err, body)
			}
			return
		}
		code, body, err = l.jsonReq("DELETE", "/volume/v3/"+l.project+"/volumes/"+v.Volume.ID, nil, nil)
		switch l.record("volume delete", v.Volume.ID, code, err, body) {
		case acked:
			l.mu.Lock()
			delete(l.volumes, v.Volume.ID)
			l.gone[v.Volume.ID] = true
			l.mu.Unlock()
		case unknown:
			l.mu.Lock()
			delete(l.volumes, v.Volume.ID)
			l.maybeVolumes[v.Volume.ID] = true
			l.mu.Unlock()
		}
	})
	// Networks: a network, its subnet, two ports, one port deleted; a
	// security group with a rule.
	worker(func(i int) {
		var net struct {
			Network struct{ ID string } `json:"network"`
		}
		code, body, err := l.jsonReq("POST", "/network/v2.0/networks", map[string]any{"network": map[string]any{"name": fmt.Sprintf("fn%d-%04d", gen, i)}}, &net)
		if l.record("network", "", code, err, body) != acked {
			return
		}
		code, body, err = l.jsonReq("POST", "/network/v2.0/subnets", map[string]any{"subnet": map[string]any{
			"network_id": net.Network.ID, "ip_version": 4, "cidr": fmt.Sprintf("10.%d.%d.0/24", 10*gen+i/250, i%250)}}, nil)
		if l.record("subnet", "", code, err, body) != acked {
			return
		}
		for j := 0; j < 2; j++ {
			var p struct {
				Port struct {
					ID       string           `json:"id"`
					FixedIPs []map[string]any `json:"fixed_ips"`
				} `json:"port"`
			}
			code, body, err = l.jsonReq("POST", "/network/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net.Network.ID}}, &p)
			if l.record("port", "", code, err, body) != acked {
				continue
			}
			if len(p.Port.FixedIPs) == 0 {
				l.record("port", p.Port.ID, 400, nil, "acknowledged without a fixed IP: "+body)
			}
			if j == 0 {
				code, body, err = l.jsonReq("DELETE", "/network/v2.0/ports/"+p.Port.ID, nil, nil)
				l.record("port delete", p.Port.ID, code, err, body)
				continue
			}
			l.mu.Lock()
			l.ports[p.Port.ID] = true
			l.mu.Unlock()
		}
		var sg struct {
			SG struct{ ID string } `json:"security_group"`
		}
		code, body, err = l.jsonReq("POST", "/network/v2.0/security-groups", map[string]any{"security_group": map[string]any{"name": fmt.Sprintf("fsg%d-%04d", gen, i)}}, &sg)
		if l.record("security group", "", code, err, body) != acked {
			return
		}
		code, body, err = l.jsonReq("POST", "/network/v2.0/security-group-rules", map[string]any{"security_group_rule": map[string]any{
			"security_group_id": sg.SG.ID, "direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "ethertype": "IPv4"}}, nil)
		l.record("security group rule", "", code, err, body)
	})
	// Projects (Keystone).
	worker(func(i int) {
		name := fmt.Sprintf("fp%d-%04d", gen, i)
		code, body, err := l.jsonReq("POST", "/identity/v3/projects", map[string]any{"project": map[string]any{"name": name}}, nil)
		if l.record("project", name, code, err, body) == acked {
			l.mu.Lock()
			l.projects[name] = true
			l.mu.Unlock()
		}
	})
}

// ackedSince waits until every kind has had n more acknowledgements than
// in before, or until d passed; it fails the test then.
func (l *faultLoad) ackedSince(before map[string]int, n int, d time.Duration, what string) {
	l.t.Helper()
	deadline := time.Now().Add(d)
	for {
		l.mu.Lock()
		var behind []string
		for _, kind := range []string{"object", "volume create", "network", "project"} {
			if l.acks[kind]-before[kind] < n {
				behind = append(behind, fmt.Sprintf("%s %d", kind, l.acks[kind]-before[kind]))
			}
		}
		l.mu.Unlock()
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			l.mu.Lock()
			last := fmt.Sprint(l.last)
			bad := l.bad[max(0, len(l.bad)-5):]
			l.mu.Unlock()
			var logs []string
			for _, n := range l.nodes {
				logs = append(logs, "log of "+n.name+":\n"+tail(n.log(), 30))
			}
			l.t.Fatalf("%s: writes did not resume within %s (acknowledged since: %s); last answers not acknowledged: %s\nlast refusals: %s\n%s", what, d, strings.Join(behind, ", "), last, strings.Join(bad, "\n"), strings.Join(logs, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (l *faultLoad) snapshot() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for k, v := range l.acks {
		out[k] = v
	}
	return out
}

func (l *faultLoad) end() {
	close(l.stop)
	l.wg.Wait()
}

// TestFaultMixedWorkload runs the mixed workload while the Raft leader
// is killed with SIGKILL and restarted, then a follower, then a node is
// frozen (SIGSTOP) and thawed. Afterwards, through every node: every
// acknowledged object reads back byte-identical and every one of unknown
// outcome is there whole or not at all; every volume settles (nothing
// left creating or deleting) and the acknowledged ones are available;
// every port has its address; every acknowledged project exists; the
// cluster is healthy; and deleting it all gives the space back.
func TestFaultMixedWorkload(t *testing.T) {
	nodes, creds := faultCluster(t)
	n1 := nodes[0]
	tok, project := faultProject(t, creds, n1.rackd)

	load := newFaultLoad(t, nodes, tok, project)
	load.run()
	stopped := false
	defer func() {
		if !stopped {
			load.end()
		}
	}()
	load.ackedSince(map[string]int{}, 3, time.Minute, "before any fault")

	// 1. The leader, killed and restarted.
	st := faultHealthy(t, creds, n1.rackd)
	leader := nodeNamed(nodes, st.Leader)
	var other *storageNode
	for _, n := range nodes {
		if n != leader {
			other = n
			break
		}
	}
	before := load.snapshot()
	load.setUp(leader.rackd, false)
	leader.kill()
	t.Logf("killed leader %s", leader.name)
	load.ackedSince(before, 3, 90*time.Second, "leader "+leader.name+" killed")
	leader.start()
	leader.waitHealthy()
	load.setUp(leader.rackd, true)
	faultHealthy(t, creds, other.rackd)

	// 2. A follower, killed and restarted.
	st = faultHealthy(t, creds, other.rackd)
	var follower *storageNode
	for _, n := range nodes {
		if n.name != st.Leader && (follower == nil || n != leader) {
			follower = n // not the node killed before, when that can be
		}
	}
	before = load.snapshot()
	load.setUp(follower.rackd, false)
	follower.kill()
	t.Logf("killed follower %s", follower.name)
	load.ackedSince(before, 3, 90*time.Second, "follower "+follower.name+" killed")
	follower.start()
	follower.waitHealthy()
	load.setUp(follower.rackd, true)

	// 3. The leader frozen (its peers elect another; its connections
	// hang), then thawed: it steps down and catches up.
	st = faultHealthy(t, creds, follower.rackd)
	frozen := nodeNamed(nodes, st.Leader)
	before = load.snapshot()
	load.setUp(frozen.rackd, false)
	thaw := freeze(t, frozen.cmd.Process)
	t.Logf("froze leader %s", frozen.name)
	defer thaw()
	load.ackedSince(before, 3, 90*time.Second, "leader "+frozen.name+" frozen")
	thaw()
	load.setUp(frozen.rackd, true)
	faultHealthy(t, creds, frozen.rackd)
	before = load.snapshot()
	load.ackedSince(before, 2, 90*time.Second, "after the faults")
	load.end()
	stopped = true

	load.mu.Lock()
	t.Logf("acknowledged %v; unknown outcome %v", load.acks, load.unknown)
	if len(load.bad) > 0 {
		t.Errorf("%d answers no fault explains:\n%s", len(load.bad), strings.Join(load.bad, "\n"))
	}
	load.mu.Unlock()

	faultCheck(t, creds, nodes, load)
}

// faultCheck checks, through every node, what the load was told.
func faultCheck(t *testing.T, creds map[string]string, nodes []*storageNode, load *faultLoad) {
	t.Helper()
	project, tok := load.project, load.tok
	// Objects: acknowledged ones byte-identical everywhere; unknown ones
	// whole or absent.
	for _, n := range nodes {
		if err := objectSet(load.objects).check(n.rackd, project, tok); err != nil {
			t.Errorf("acknowledged object: %v", err)
		}
	}
	for name, want := range load.maybeObjects {
		for _, n := range nodes {
			code, got := fetch(n.url()+"/object/v1/AUTH_"+project+"/"+name, tok)
			if code != 404 && (code != 200 || got != want) {
				t.Errorf("object %s of unknown outcome, via %s: HTTP %d sha256 %s, want 404 or %s", name, n.name, code, got, want)
			}
		}
	}

	// Volumes settle: none is left creating or deleting.
	type volume struct {
		ID, Status, Name string
	}
	var vols []volume
	deadline := time.Now().Add(90 * time.Second)
	for {
		var list struct {
			Volumes []volume `json:"volumes"`
		}
		code, err := call("GET", nodes[0].url()+"/volume/v3/"+project+"/volumes/detail", tok, nil, &list)
		if err != nil || code != 200 {
			t.Fatalf("volume list: %d %v", code, err)
		}
		vols = list.Volumes
		var working []string
		for _, v := range vols {
			if v.Status == "creating" || v.Status == "deleting" {
				working = append(working, v.ID+" "+v.Status)
			}
		}
		if len(working) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("volumes stuck after the faults: %v", working)
			for _, w := range working {
				id, _, _ := strings.Cut(w, " ")
				for _, n := range nodes {
					for _, line := range strings.Split(n.log(), "\n") {
						if strings.Contains(line, id) {
							t.Logf("%s: %s", n.name, line)
						}
					}
				}
			}
			break
		}
		time.Sleep(time.Second)
	}
	// Snapshots settle too.
	deadline = time.Now().Add(90 * time.Second)
	for {
		var list struct {
			Snapshots []volume `json:"snapshots"`
		}
		code, err := call("GET", nodes[1].url()+"/volume/v3/"+project+"/snapshots/detail", tok, nil, &list)
		if err != nil || code != 200 {
			t.Fatalf("snapshot list: %d %v", code, err)
		}
		var working []string
		for _, sn := range list.Snapshots {
			if sn.Status == "creating" || sn.Status == "deleting" {
				working = append(working, sn.ID+" "+sn.Status)
			}
		}
		if len(working) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("snapshots stuck after the faults: %v", working)
			break
		}
		time.Sleep(time.Second)
	}
	have := map[string]string{}
	for _, v := range vols {
		have[v.ID] = v.Status
	}
	for id := range load.volumes {
		if have[id] != "available" {
			t.Errorf("acknowledged volume %s is %q, want available", id, have[id])
		}
	}
	for id := range load.gone {
		if s, ok := have[id]; ok {
			t.Errorf("volume %s whose delete was acknowledged is still listed (%s)", id, s)
		}
	}

	// Ports: every acknowledged one is there, on every node, with its
	// address.
	for _, n := range nodes {
		var list struct {
			Ports []struct {
				ID       string           `json:"id"`
				FixedIPs []map[string]any `json:"fixed_ips"`
			} `json:"ports"`
		}
		if code, err := call("GET", n.url()+"/network/v2.0/ports", tok, nil, &list); err != nil || code != 200 {
			t.Fatalf("port list via %s: %d %v", n.name, code, err)
		}
		seen := map[string]bool{}
		for _, p := range list.Ports {
			seen[p.ID] = true
			if len(p.FixedIPs) == 0 {
				t.Errorf("port %s via %s has no fixed IP", p.ID, n.name)
			}
		}
		for id := range load.ports {
			if !seen[id] {
				t.Errorf("acknowledged port %s missing via %s", id, n.name)
			}
		}
		var projects struct {
			Projects []struct{ Name string } `json:"projects"`
		}
		if code, err := call("GET", n.url()+"/identity/v3/projects", tok, nil, &projects); err != nil || code != 200 {
			t.Fatalf("project list via %s: %d %v", n.name, code, err)
		}
		names := map[string]bool{}
		for _, p := range projects.Projects {
			names[p.Name] = true
		}
		for name := range load.projects {
			if !names[name] {
				t.Errorf("acknowledged project %s missing via %s", name, n.name)
			}
		}
	}
	faultHealthy(t, creds, nodes[0].rackd)

	// Deleting it all gives the space back: no volume and no garbage
	// left, and the disks hold no more shards than before the load.
	for _, v := range vols {
		if code, err := call("DELETE", nodes[0].url()+"/volume/v3/"+project+"/volumes/"+v.ID+"?cascade=true", tok, nil, nil); err != nil || code != 202 {
			t.Errorf("delete volume %s (%s): %d %v", v.ID, v.Status, code, err)
		}
	}
	var objs []struct{ Name string }
	if code, err := call("GET", nodes[0].url()+"/object/v1/AUTH_"+project+"/fault-c?format=json", tok, nil, &objs); err != nil || code != 200 {
		t.Fatalf("object list: %d %v", code, err)
	}
	for _, o := range objs {
		if code, err := call("DELETE", nodes[1].url()+"/object/v1/AUTH_"+project+"/fault-c/"+o.Name, tok, nil, nil); err != nil || code != 204 {
			t.Errorf("delete object %s: %d %v", o.Name, code, err)
		}
	}
	waitStorage(t, creds, nodes[2].rackd, "no volume and no garbage left", 2*time.Minute, func(s storageStatus) bool {
		return s.Volumes.Volumes == 0 && s.Garbage == 0 && s.Degraded == 0
	})
}

// TestFaultRestartStorm writes through every API (objects, a volume over
// NBD with FUA, networks, projects), then kills all three nodes at once
// with SIGKILL and starts them again together, then restarts them one
// after the other under the mixed workload. The cluster comes back each
// time, serves, and every acknowledged write is there.
func TestFaultRestartStorm(t *testing.T) {
	testenv.RequireCommand(t, "qemu-io")
	nodes, creds := faultCluster(t)
	n1 := nodes[0]
	tok, project := faultProject(t, creds, n1.rackd)
	// A block volume written over NBD through a follower, every write FUA.
	st := faultHealthy(t, creds, n1.rackd)
	var via *storageNode
	for _, n := range nodes {
		if n.name != st.Leader {
			via = n
		}
	}
	if out, err := rackctl(t, creds, via.rackd, "volume", "create", "storm", "--size", "64M"); err != nil {
		t.Fatalf("volume create: %v\n%s", err, out)
	}
	ex := exportVolume(t, creds, via.rackd, "storm")
	var writes []string
	for i := 0; i < 64; i++ {
		// Every page of the first 16 MiB but with holes; some writes
		// overwrite earlier ones.
		writes = append(writes, "-c", fmt.Sprintf("write -f -P %d %d 96k", i%200+1, int64(i*37%160)*96<<10))
	}
	nbdTool(t, "qemu-io", append(append([]string{"-f", "raw"}, writes...), ex.URI)...)
	// What each 96 KiB slot holds: the last write to it.
	slots := map[int64]int{}
	for i := 0; i < 64; i++ {
		slots[int64(i*37%160)*96<<10] = i%200 + 1
	}
	if out, err := rackctl(t, creds, via.rackd, "volume", "unexport", "storm"); err != nil {
		t.Fatalf("unexport: %v\n%s", err, out)
	}
	checkVolume := func(when string) {
		t.Helper()
		ex := exportVolume(t, creds, via.rackd, "storm")
		var reads []string
		for off, p := range slots {
			reads = append(reads, "-c", fmt.Sprintf("read -P %d %d 96k", p, off))
		}
		out := nbdTool(t, "qemu-io", append(append([]string{"-f", "raw"}, reads...), ex.URI)...)
		if strings.Contains(out, "failed") || strings.Contains(out, "error") || strings.Count(out, "read 98304/98304 bytes") != len(slots) {
			t.Fatalf("%s: the volume's acknowledged writes do not read back:\n%.3000s", when, out)
		}
		if out, err := rackctl(t, creds, via.rackd, "volume", "unexport", "storm"); err != nil {
			t.Fatalf("unexport: %v\n%s", err, out)
		}
	}

	// The mixed workload, stopped before the storm.
	load := newFaultLoad(t, nodes, tok, project)
	load.run()
	load.ackedSince(map[string]int{}, 5, time.Minute, "before the storm")
	load.end()

	// All at once.
	for _, n := range nodes {
		n.kill()
	}
	for _, n := range nodes {
		n.start()
	}
	for _, n := range nodes {
		n.waitHealthy()
	}
	faultHealthy(t, creds, n1.rackd)
	checkVolume("after all three nodes were killed at once")

	// One after the other, under the workload.
	load.stop = make(chan struct{})
	load.run()
	for _, n := range nodes {
		before := load.snapshot()
		load.setUp(n.rackd, false)
		n.kill()
		n.start()
		n.waitHealthy()
		load.setUp(n.rackd, true)
		faultHealthy(t, creds, n.rackd)
		load.ackedSince(before, 2, 90*time.Second, "after restarting "+n.name)
	}
	load.end()
	load.mu.Lock()
	t.Logf("acknowledged %v; unknown outcome %v", load.acks, load.unknown)
	if len(load.bad) > 0 {
		t.Errorf("%d answers no fault explains:\n%s", len(load.bad), strings.Join(load.bad, "\n"))
	}
	load.mu.Unlock()
	checkVolume("after a rolling restart")
	if out, err := rackctl(t, creds, via.rackd, "volume", "delete", "storm"); err != nil {
		t.Fatalf("volume delete: %v\n%s", err, out)
	}
	faultCheck(t, creds, nodes, load)
}

// TestFaultBlockLeaderKill writes a volume over NBD through a follower,
// every write FUA, while the Raft leader is killed with SIGKILL: a write
// whose flush's commit was lost fails (EIO) or is acknowledged once the
// new leader commits it, and after the old leader restarts every
// acknowledged write reads back, through another node too.
func TestFaultBlockLeaderKill(t *testing.T) {
	for _, c := range []string{"qemu-io", "stdbuf"} {
		testenv.RequireCommand(t, c)
	}
	nodes, creds := faultCluster(t)
	st := faultHealthy(t, creds, nodes[0].rackd)
	leader, via, reader := clusterRoles(nodes, st.Leader)
	if out, err := rackctl(t, creds, via.rackd, "volume", "create", "bl", "--size", "128M"); err != nil {
		t.Fatalf("volume create: %v\n%s", err, out)
	}
	ex := exportVolume(t, creds, via.rackd, "bl")
	const writes = 2000 // 64 KiB each, over 125 MiB: far more than finish before the kill
	w := startFUAWriter(t, ex.URI, writes)
	w.waitAcked(t, 50, "before the kill")
	leader.kill()
	atKill := len(w.acked())
	// Writes go on once another leader is elected.
	w.waitAcked(t, atKill+50, "after killing the leader "+leader.name)
	w.cmd.Process.Kill()
	<-w.done
	leader.start()
	leader.waitHealthy()
	faultHealthy(t, creds, via.rackd)

	b := w.output()
	acked := fuaWrote.FindAllSubmatch(b, -1)
	failed := strings.Count(string(b), "write failed")
	t.Logf("%d FUA writes acknowledged (%d before the kill), %d failed", len(acked), atKill, failed)
	var reads []string
	for _, m := range acked {
		off, _ := strconv.ParseInt(string(m[1]), 10, 64)
		reads = append(reads, "-c", fmt.Sprintf("read -P %d %d 64k", off/(64<<10)%250+1, off))
	}
	if out, err := rackctl(t, creds, via.rackd, "volume", "unexport", "bl"); err != nil {
		t.Fatalf("unexport: %v\n%s", err, out)
	}
	for _, n := range []*storageNode{reader, via} {
		ex := exportVolume(t, creds, n.rackd, "bl")
		out := nbdTool(t, "qemu-io", append(append([]string{"-f", "raw"}, reads...), ex.URI)...)
		if strings.Contains(out, "failed") || strings.Contains(out, "error") || strings.Count(out, "read 65536/65536 bytes") != len(acked) {
			t.Fatalf("through %s, acknowledged writes do not all read back:\n%.3000s", n.name, out)
		}
		if out, err := rackctl(t, creds, n.rackd, "volume", "unexport", "bl"); err != nil {
			t.Fatalf("unexport: %v\n%s", err, out)
		}
	}
	if out, err := rackctl(t, creds, reader.rackd, "volume", "delete", "bl"); err != nil {
		t.Fatalf("volume delete: %v\n%s", err, out)
	}
	waitStorage(t, creds, reader.rackd, "the volume's space given back", 2*time.Minute, func(s storageStatus) bool {
		return s.Volumes.Volumes == 0 && s.Garbage == 0
	})
}

// worker runs step(0), step(1), … on a goroutine of its own, 20 ms
// apart, until the load stops.
func (l *faultLoad) worker(step func(i int)) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			step(i)
			time.Sleep(20 * time.Millisecond)
		}
	}()
}

// clusterRoles splits a three-node cluster: the leader, and the two
// followers (one to act through, one to read back through).
func clusterRoles(nodes []*storageNode, leaderName string) (leader, follower, reader *storageNode) {
	leader = nodeNamed(nodes, leaderName)
	for _, n := range nodes {
		switch {
		case n == leader:
		case follower == nil:
			follower = n
		default:
			reader = n
		}
	}
	return leader, follower, reader
}

// freeze stops p (SIGSTOP); the func it returns resumes it (SIGCONT), once
// however often it is called, so a test both calls and defers it.
func freeze(t *testing.T, p *os.Process) (thaw func()) {
	t.Helper()
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	return func() { once.Do(func() { p.Signal(syscall.SIGCONT) }) }
}
