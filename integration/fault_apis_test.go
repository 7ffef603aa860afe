//go:build integration

package integration

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/storage/s3/sigv4"
)

// The writes TestFaultMixedWorkload's load does not make, under the same
// faults: S3 multipart uploads, Swift static large objects, image
// uploads and the volumes made from them and backed up, Keystone role
// assignments and tokens, Neutron routers and floating IPs. Afterwards
// every acknowledged write is there through every node, every one of
// unknown outcome is there whole or not at all, and nothing is left in a
// transitional status (an image saving, a volume or backup creating).

// faultAPIs is what the extra workers were told.
type faultAPIs struct {
	*faultLoad
	access, secret string // the admin's EC2 credential, for S3
	userID, roleID string // the user given roles on new projects
	extNet         string // the external network of routers and floating IPs

	mu         sync.Mutex
	s3         map[string]string // acknowledged multipart objects: key → sha256
	maybeS3    map[string]string // completion of unknown outcome
	slos       map[string]string // acknowledged SLO manifests: name → sha256 of the whole
	maybeSLOs  map[string]string
	images     map[string]string // acknowledged uploads: image id → sha256
	maybeImgs  map[string]string // upload of unknown outcome
	imgVolumes map[string]bool   // volumes from an image, create acknowledged
	backups    map[string]bool   // backups, create acknowledged
	assigned   map[string]bool   // projects given the role, acknowledged
	tokens     []string          // issued (201)
	routers    map[string]bool   // routers whose interface was added, acknowledged
	fips       map[string]string // id → address
}

// s3Req sends a request signed with the admin's EC2 credential to the S3
// port of the next node up.
func (a *faultAPIs) s3Req(method, path string, body []byte) (int, []byte, error) {
	code, raw, _, err := a.s3Do(method, path, body)
	return code, raw, err
}

// s3Do is s3Req that also returns the answer's headers.
func (a *faultAPIs) s3Do(method, path string, body []byte) (int, []byte, http.Header, error) {
	n := a.node()
	req, err := http.NewRequest(method, "http://"+n.s3+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	sigv4.Sign(req, a.access, a.secret, "us-east-1", sigv4.UnsignedPayload, time.Now())
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, resp.Header, err
}

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// faultAPIsSetUp makes what the workers need: an EC2 credential, a user
// and the member role, an external network, and quotas out of the way.
func faultAPIsSetUp(t *testing.T, creds map[string]string, l *faultLoad, n1 *rackd) *faultAPIs {
	t.Helper()
	a := &faultAPIs{faultLoad: l, s3: map[string]string{}, maybeS3: map[string]string{}, slos: map[string]string{},
		maybeSLOs: map[string]string{}, images: map[string]string{}, maybeImgs: map[string]string{}, imgVolumes: map[string]bool{},
		backups: map[string]bool{}, assigned: map[string]bool{}, routers: map[string]bool{}, fips: map[string]string{}}
	var ec2 struct{ Access, Secret string }
	if err := json.Unmarshal([]byte(openstack(t, osEnv(creds, n1), "ec2", "credentials", "create", "-f", "json")), &ec2); err != nil || ec2.Access == "" {
		t.Fatalf("ec2 credential: %v", err)
	}
	a.access, a.secret = ec2.Access, ec2.Secret
	var u struct {
		User struct{ ID string } `json:"user"`
	}
	if code, err := call("POST", n1.url()+"/identity/v3/users", l.tok, map[string]any{"user": map[string]any{"name": "fault-u", "password": "fault-pass-1"}}, &u); err != nil || code != 201 {
		t.Fatalf("user: %d %v", code, err)
	}
	a.userID = u.User.ID
	var roles struct {
		Roles []struct{ ID string } `json:"roles"`
	}
	if code, err := call("GET", n1.url()+"/identity/v3/roles?name=member", l.tok, nil, &roles); err != nil || code != 200 || len(roles.Roles) != 1 {
		t.Fatalf("member role: %d %v %+v", code, err, roles)
	}
	a.roleID = roles.Roles[0].ID
	var net struct {
		Network struct{ ID string } `json:"network"`
	}
	if code, err := call("POST", n1.url()+"/network/v2.0/networks", l.tok, map[string]any{"network": map[string]any{"name": "fault-ext", "router:external": true}}, &net); err != nil || code != 201 {
		t.Fatalf("external network: %d %v", code, err)
	}
	a.extNet = net.Network.ID
	if code, err := call("POST", n1.url()+"/network/v2.0/subnets", l.tok, map[string]any{"subnet": map[string]any{
		"network_id": a.extNet, "ip_version": 4, "cidr": "172.20.0.0/20"}}, nil); err != nil || code != 201 {
		t.Fatalf("external subnet: %d %v", code, err)
	}
	if code, err := call("PUT", n1.url()+"/network/v2.0/quotas/"+l.project, l.tok, map[string]any{"quota": map[string]any{
		"router": -1, "floatingip": -1}}, nil); err != nil || code != 200 {
		t.Fatalf("network quotas: %d %v", code, err)
	}
	if code, err := call("PUT", n1.url()+"/volume/v3/"+l.project+"/os-quota-sets/"+l.project, l.tok, map[string]any{"quota_set": map[string]any{
		"backups": -1, "backup_gigabytes": -1}}, nil); err != nil || code != 200 {
		t.Fatalf("backup quotas: %d %v", code, err)
	}
	return a
}

// keep files a write's checksum under key by its outcome: in done when
// it was acknowledged, in maybe when its outcome is unknown (then it
// must read back whole or not at all). It returns o.
func (a *faultAPIs) keep(o outcome, done, maybe map[string]string, key, sum string) outcome {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch o {
	case acked:
		done[key] = sum
	case unknown:
		maybe[key] = sum
	}
	return o
}

// runAPIs starts the extra workers on the load's stop channel.
func (a *faultAPIs) runAPIs() {
	a.faultLoad.mu.Lock()
	gen := a.gen
	a.faultLoad.mu.Unlock()
	worker := a.worker
	// S3 multipart: every third upload of two parts (the first of the
	// minimum size), the others of one.
	worker(func(i int) {
		key := fmt.Sprintf("mp%d-%05d", gen, i)
		code, body, err := a.s3Req("POST", "/fault-c/"+key+"?uploads", nil)
		if a.record("s3 upload", key, code, err, string(body)) != acked {
			return
		}
		var init struct{ UploadId string }
		if err := xml.Unmarshal(body, &init); err != nil || init.UploadId == "" {
			a.record("s3 upload", key, 400, nil, "no UploadId: "+string(body))
			return
		}
		parts := [][]byte{randBytes(40<<10 + i)}
		if i%3 == 0 {
			parts = [][]byte{randBytes(5 << 20), randBytes(1000 + i)}
		}
		var whole []byte
		complete := "<CompleteMultipartUpload>"
		for n, p := range parts {
			code, raw, err := a.s3PartPut(key, init.UploadId, n+1, p)
			if a.record("s3 part", key, code, err, string(raw)) != acked {
				return
			}
			whole = append(whole, p...)
			complete += fmt.Sprintf("<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", n+1, raw)
		}
		complete += "</CompleteMultipartUpload>"
		code, body, err = a.s3Req("POST", "/fault-c/"+key+"?uploadId="+init.UploadId, []byte(complete))
		if code == 200 && strings.Contains(string(body), "<Error>") {
			// S3 may answer 200 and an error in the body.
			code = 500
		}
		a.keep(a.record("s3 complete", key, code, err, string(body)), a.s3, a.maybeS3, key, sha(whole))
	})
	// Swift SLO: two segments and their manifest.
	worker(func(i int) {
		name := fmt.Sprintf("slo%d-%05d", gen, i)
		var whole []byte
		var manifest []map[string]any
		for n, size := range []int{64<<10 + i, 3000} {
			b := randBytes(size)
			seg := fmt.Sprintf("fault-c/%s-seg/%d", name, n)
			code, body, err := a.req("PUT", "/object/v1/AUTH_"+a.project+"/"+seg, b)
			if a.record("slo segment", seg, code, err, string(body)) != acked {
				return
			}
			whole = append(whole, b...)
			manifest = append(manifest, map[string]any{"path": "/" + seg, "size_bytes": size, "etag": md5Hex(b)})
		}
		raw, _ := json.Marshal(manifest)
		code, body, err := a.req("PUT", "/object/v1/AUTH_"+a.project+"/fault-c/"+name+"?multipart-manifest=put", raw)
		a.keep(a.record("slo manifest", name, code, err, string(body)), a.slos, a.maybeSLOs, name, sha(whole))
	})
	// Images: made, uploaded; every other one made into a volume, which
	// is backed up once available.
	worker(func(i int) {
		var img struct{ ID string }
		code, body, err := a.jsonReq("POST", "/image/v2/images", map[string]any{"name": fmt.Sprintf("fi%d-%04d", gen, i), "disk_format": "raw", "container_format": "bare"}, &img)
		if a.record("image", "", code, err, body) != acked {
			return
		}
		data := randBytes(200<<10 + i)
		n := a.node()
		req, _ := http.NewRequest("PUT", n.url()+"/image/v2/images/"+img.ID+"/file", bytes.NewReader(data))
		req.Header.Set("X-Auth-Token", a.tok)
		req.Header.Set("Content-Type", "application/octet-stream")
		var raw []byte
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err == nil {
			raw, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
		}
		if a.keep(a.record("image upload", img.ID, code, err, string(raw)), a.images, a.maybeImgs, img.ID, sha(data)) != acked {
			return
		}
		if i%2 == 1 {
			return
		}
		var v struct {
			Volume struct{ ID string } `json:"volume"`
		}
		code, body, err = a.jsonReq("POST", "/volume/v3/"+a.project+"/volumes", map[string]any{"volume": map[string]any{"size": 1, "imageRef": img.ID, "name": fmt.Sprintf("fiv%d-%04d", gen, i)}}, &v)
		if a.record("volume from image", img.ID, code, err, body) != acked {
			return
		}
		a.mu.Lock()
		a.imgVolumes[v.Volume.ID] = true
		a.mu.Unlock()
		// Wait (a while) for it, then back it up.
		for try := 0; try < 50; try++ {
			var got struct {
				Volume struct{ Status string } `json:"volume"`
			}
			code, _, err := a.jsonReq("GET", "/volume/v3/"+a.project+"/volumes/"+v.Volume.ID, nil, &got)
			if err == nil && code == 200 && got.Volume.Status != "creating" {
				if got.Volume.Status != "available" {
					return
				}
				var b struct {
					Backup struct{ ID string } `json:"backup"`
				}
				code, body, err := a.jsonReq("POST", "/volume/v3/"+a.project+"/backups", map[string]any{"backup": map[string]any{"volume_id": v.Volume.ID, "name": fmt.Sprintf("fb%d-%04d", gen, i)}}, &b)
				if a.record("backup", v.Volume.ID, code, err, body) == acked {
					a.mu.Lock()
					a.backups[b.Backup.ID] = true
					a.mu.Unlock()
				}
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	// Keystone: a project given the user's role; a token issued.
	worker(func(i int) {
		name := fmt.Sprintf("fra%d-%04d", gen, i)
		var p struct {
			Project struct{ ID string } `json:"project"`
		}
		code, body, err := a.jsonReq("POST", "/identity/v3/projects", map[string]any{"project": map[string]any{"name": name}}, &p)
		if a.record("project", name, code, err, body) != acked {
			return
		}
		code, body, err = a.jsonReq("PUT", "/identity/v3/projects/"+p.Project.ID+"/users/"+a.userID+"/roles/"+a.roleID, nil, nil)
		if a.record("role assignment", name, code, err, body) != acked {
			return
		}
		a.mu.Lock()
		a.assigned[p.Project.ID] = true
		a.mu.Unlock()
		n := a.node()
		auth := fmt.Sprintf(`{"auth":{"identity":{"methods":["password"],"password":{"user":{"id":%q,"password":"fault-pass-1"}}},"scope":{"project":{"id":%q}}}}`, a.userID, p.Project.ID)
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Post(n.url()+"/identity/v3/auth/tokens", "application/json", strings.NewReader(auth))
		code = 0
		var raw []byte
		if err == nil {
			raw, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
		}
		if a.record("token", name, code, err, string(raw)) == acked {
			a.mu.Lock()
			a.tokens = append(a.tokens, resp.Header.Get("X-Subject-Token"))
			a.mu.Unlock()
		}
	})
	// Neutron L3: a router with an interface on a subnet of its own, a
	// floating IP. (A gateway on the external network needs a flat one
	// or an uplink, which this cluster has not.)
	worker(func(i int) {
		var net struct {
			Network struct{ ID string } `json:"network"`
		}
		code, body, err := a.jsonReq("POST", "/network/v2.0/networks", map[string]any{"network": map[string]any{"name": fmt.Sprintf("frn%d-%04d", gen, i)}}, &net)
		if a.record("network", "", code, err, body) != acked {
			return
		}
		var sub struct {
			Subnet struct{ ID string } `json:"subnet"`
		}
		code, body, err = a.jsonReq("POST", "/network/v2.0/subnets", map[string]any{"subnet": map[string]any{
			"network_id": net.Network.ID, "ip_version": 4, "cidr": fmt.Sprintf("10.%d.%d.0/24", 100+gen*10+i/250, i%250)}}, &sub)
		if a.record("subnet", "", code, err, body) != acked {
			return
		}
		var r struct {
			Router struct{ ID string } `json:"router"`
		}
		code, body, err = a.jsonReq("POST", "/network/v2.0/routers", map[string]any{"router": map[string]any{"name": fmt.Sprintf("fr%d-%04d", gen, i)}}, &r)
		if a.record("router", "", code, err, body) != acked {
			return
		}
		code, body, err = a.jsonReq("PUT", "/network/v2.0/routers/"+r.Router.ID+"/add_router_interface", map[string]any{"subnet_id": sub.Subnet.ID}, nil)
		if a.record("router interface", r.Router.ID, code, err, body) == acked {
			a.mu.Lock()
			a.routers[r.Router.ID] = true
			a.mu.Unlock()
		}
		var f struct {
			FIP struct {
				ID      string `json:"id"`
				Address string `json:"floating_ip_address"`
			} `json:"floatingip"`
		}
		code, body, err = a.jsonReq("POST", "/network/v2.0/floatingips", map[string]any{"floatingip": map[string]any{"floating_network_id": a.extNet}}, &f)
		if a.record("floating ip", "", code, err, body) == acked {
			a.mu.Lock()
			a.fips[f.FIP.ID] = f.FIP.Address
			a.mu.Unlock()
		}
	})
}

// s3PartPut uploads one part; the body it returns is the part's ETag.
func (a *faultAPIs) s3PartPut(key, upload string, n int, p []byte) (int, []byte, error) {
	code, raw, h, err := a.s3Do("PUT", fmt.Sprintf("/fault-c/%s?partNumber=%d&uploadId=%s", key, n, upload), p)
	if err == nil && code == 200 {
		raw = []byte(h.Get("ETag"))
	}
	return code, raw, err
}

// ackedAPIs waits until every extra kind has had n more
// acknowledgements than in before.
func (a *faultAPIs) ackedAPIs(before map[string]int, n int, d time.Duration, what string) {
	a.t.Helper()
	deadline := time.Now().Add(d)
	for {
		a.faultLoad.mu.Lock()
		var behind []string
		for _, kind := range []string{"s3 complete", "slo manifest", "image upload", "role assignment", "token", "router interface", "floating ip"} {
			if a.acks[kind]-before[kind] < n {
				behind = append(behind, fmt.Sprintf("%s %d", kind, a.acks[kind]-before[kind]))
			}
		}
		last := fmt.Sprint(a.last)
		bad := strings.Join(a.bad[max(0, len(a.bad)-5):], "\n")
		a.faultLoad.mu.Unlock()
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("%s: writes did not resume within %s (acknowledged since: %s); last answers not acknowledged: %s\nlast refusals: %s", what, d, strings.Join(behind, ", "), last, bad)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestFaultAPIsLeaderKill runs the extra workers (S3 multipart, SLO,
// images into volumes and backups, role assignments and tokens, routers
// and floating IPs) while the Raft leader is killed with SIGKILL and
// restarted, then a follower; then checks what they were told through
// every node, and that nothing stays in a transitional status.
func TestFaultAPIsLeaderKill(t *testing.T) {
	nodes, creds := faultCluster(t)
	n1 := nodes[0]
	tok, project := faultProject(t, creds, n1.rackd)
	load := newFaultLoad(t, nodes, tok, project)
	a := faultAPIsSetUp(t, creds, load, n1.rackd)
	load.gen++
	a.runAPIs()
	stopped := false
	defer func() {
		if !stopped {
			load.end()
		}
	}()
	a.ackedAPIs(map[string]int{}, 3, time.Minute, "before any fault")

	var victim *storageNode
	for _, which := range []string{"leader", "follower", "leader", "follower"} {
		st := faultHealthy(t, creds, n1.rackd)
		last := victim
		victim = nil
		for _, n := range nodes {
			if (n.name == st.Leader) == (which == "leader") && (victim == nil || victim == last) {
				victim = n // not the node killed before, when that can be
			}
		}
		before := load.snapshot()
		load.setUp(victim.rackd, false)
		victim.kill()
		t.Logf("killed %s %s", which, victim.name)
		a.ackedAPIs(before, 3, 90*time.Second, which+" "+victim.name+" killed")
		victim.start()
		victim.waitHealthy()
		load.setUp(victim.rackd, true)
		faultHealthy(t, creds, victim.rackd)
	}
	a.ackedAPIs(load.snapshot(), 2, 90*time.Second, "after the faults")
	load.end()
	stopped = true

	load.mu.Lock()
	t.Logf("acknowledged %v; unknown outcome %v", load.acks, load.unknown)
	if len(load.bad) > 0 {
		t.Errorf("%d answers no fault explains:\n%s", len(load.bad), strings.Join(load.bad, "\n"))
	}
	load.mu.Unlock()
	a.check(t, nodes)
}

// check checks, through every node, what the extra workers were told.
func (a *faultAPIs) check(t *testing.T, nodes []*storageNode) {
	t.Helper()
	base := "/object/v1/AUTH_" + a.project + "/fault-c/"
	for _, n := range nodes {
		for _, set := range []map[string]string{a.s3, a.slos} {
			for name, want := range set {
				if code, got := fetch(n.url()+base+name, a.tok); code != 200 || got != want {
					t.Errorf("acknowledged %s via %s: HTTP %d sha256 %s, want %s", name, n.name, code, got, want)
				}
			}
		}
		for _, set := range []map[string]string{a.maybeS3, a.maybeSLOs} {
			for name, want := range set {
				if code, got := fetch(n.url()+base+name, a.tok); code != 404 && (code != 200 || got != want) {
					t.Errorf("%s of unknown outcome via %s: HTTP %d sha256 %s, want 404 or %s", name, n.name, code, got, want)
				}
			}
		}
	}

	// Images: acknowledged ones active with their bytes; those of
	// unknown outcome active with them or queued again; none saving,
	// within a bounded time.
	type image struct{ ID, Status string }
	deadline := time.Now().Add(150 * time.Second)
	var imgs map[string]string
	for {
		var list struct {
			Images []image `json:"images"`
		}
		if code, err := call("GET", nodes[1%len(nodes)].url()+"/image/v2/images?limit=1000", a.tok, nil, &list); err != nil || code != 200 {
			t.Fatalf("image list: %d %v", code, err)
		}
		imgs = map[string]string{}
		var saving []string
		for _, im := range list.Images {
			imgs[im.ID] = im.Status
			if im.Status == "saving" || im.Status == "importing" {
				saving = append(saving, im.ID)
			}
		}
		if len(saving) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("images stuck saving after the faults: %v", saving)
			break
		}
		time.Sleep(2 * time.Second)
	}
	for _, n := range nodes {
		for id, want := range a.images {
			if imgs[id] != "active" {
				t.Errorf("image %s whose upload was acknowledged is %q", id, imgs[id])
				continue
			}
			if code, got := fetch(n.url()+"/image/v2/images/"+id+"/file", a.tok); code != 200 || got != want {
				t.Errorf("image %s via %s: HTTP %d sha256 %s, want %s", id, n.name, code, got, want)
			}
		}
		for id, want := range a.maybeImgs {
			switch imgs[id] {
			case "queued":
			case "active":
				if code, got := fetch(n.url()+"/image/v2/images/"+id+"/file", a.tok); code != 200 || got != want {
					t.Errorf("image %s of unknown outcome, active, via %s: HTTP %d sha256 %s, want %s", id, n.name, code, got, want)
				}
			default:
				t.Errorf("image %s of unknown outcome is %q, want active or queued", id, imgs[id])
			}
		}
	}

	// Volumes from images and backups settle: available, or error with a
	// reason.
	type row struct{ ID, Status string }
	deadline = time.Now().Add(150 * time.Second)
	for {
		var vols struct {
			Volumes []row `json:"volumes"`
		}
		var bks struct {
			Backups []row `json:"backups"`
		}
		if code, err := call("GET", nodes[2%len(nodes)].url()+"/volume/v3/"+a.project+"/volumes/detail", a.tok, nil, &vols); err != nil || code != 200 {
			t.Fatalf("volume list: %d %v", code, err)
		}
		if code, err := call("GET", nodes[0].url()+"/volume/v3/"+a.project+"/backups/detail", a.tok, nil, &bks); err != nil || code != 200 {
			t.Fatalf("backup list: %d %v", code, err)
		}
		have := map[string]string{}
		for _, v := range append(vols.Volumes, bks.Backups...) {
			have[v.ID] = v.Status
		}
		var working []string
		for id := range a.imgVolumes {
			if s := have[id]; s != "available" && s != "error" {
				working = append(working, "volume "+id+" "+s)
			}
		}
		for id := range a.backups {
			if s := have[id]; s != "available" && s != "error" {
				working = append(working, "backup "+id+" "+s)
			}
		}
		if len(working) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("acknowledged volumes from images and backups not settled: %v", working)
			break
		}
		time.Sleep(2 * time.Second)
	}

	// Keystone: every acknowledged role assignment is there, every
	// issued token verifies, through every node.
	for _, n := range nodes {
		var ra struct {
			RoleAssignments []struct {
				Scope struct {
					Project struct{ ID string } `json:"project"`
				} `json:"scope"`
			} `json:"role_assignments"`
		}
		if code, err := call("GET", n.url()+"/identity/v3/role_assignments?user.id="+a.userID, a.tok, nil, &ra); err != nil || code != 200 {
			t.Fatalf("role assignments via %s: %d %v", n.name, code, err)
		}
		seen := map[string]bool{}
		for _, r := range ra.RoleAssignments {
			seen[r.Scope.Project.ID] = true
		}
		for p := range a.assigned {
			if !seen[p] {
				t.Errorf("acknowledged role assignment on project %s missing via %s", p, n.name)
			}
		}
		for i, tk := range a.tokens {
			req, _ := http.NewRequest("GET", n.url()+"/identity/v3/auth/tokens", nil)
			req.Header.Set("X-Auth-Token", a.tok)
			req.Header.Set("X-Subject-Token", tk)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("token check via %s: %v", n.name, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("issued token %d does not verify via %s: HTTP %d", i, n.name, resp.StatusCode)
			}
		}
		// Neutron: every acknowledged router interface is there (its
		// port), every floating IP has its address.
		var ports struct {
			Ports []struct {
				DeviceID string           `json:"device_id"`
				Owner    string           `json:"device_owner"`
				IPs      []map[string]any `json:"fixed_ips"`
			} `json:"ports"`
		}
		if code, err := call("GET", n.url()+"/network/v2.0/ports?device_owner=network:router_interface", a.tok, nil, &ports); err != nil || code != 200 {
			t.Fatalf("router ports via %s: %d %v", n.name, code, err)
		}
		seen = map[string]bool{}
		for _, p := range ports.Ports {
			if p.Owner == "network:router_interface" && len(p.IPs) > 0 {
				seen[p.DeviceID] = true
			}
		}
		for id := range a.routers {
			if !seen[id] {
				t.Errorf("acknowledged interface of router %s missing via %s", id, n.name)
			}
		}
		var fips struct {
			FIPs []struct {
				ID      string `json:"id"`
				Address string `json:"floating_ip_address"`
			} `json:"floatingips"`
		}
		if code, err := call("GET", n.url()+"/network/v2.0/floatingips", a.tok, nil, &fips); err != nil || code != 200 {
			t.Fatalf("floating IP list via %s: %d %v", n.name, code, err)
		}
		addrs := map[string]string{}
		for _, f := range fips.FIPs {
			addrs[f.ID] = f.Address
		}
		for id, addr := range a.fips {
			if addrs[id] != addr {
				t.Errorf("acknowledged floating IP %s (%s) via %s: %q", id, addr, n.name, addrs[id])
			}
		}
	}
}

// TestFaultNodeLost freezes a follower (SIGSTOP) under the extra workers
// while it holds work that lasts (an image upload whose body stalls, a
// volume being made from a large image, backups), for longer than the
// cluster waits before it takes a node for lost. The two others carry
// on, and the work the node held gets to an honest state, as it must for
// a node that never comes back: the image queued again, the volume and
// backups in error with a reason, none left saving or creating; every
// acknowledged write is there through the nodes that remain. Then the
// image is uploaded again through another node, and the frozen node is
// thawed and its stalled upload ends: the image keeps the data of the
// upload that made it active, and the work the node takes up again does
// not undo what was settled.
func TestFaultNodeLost(t *testing.T) {
	// The frozen node stays a voter, so that it comes back as it was.
	nodes, creds := faultCluster(t, "--dead-voter-after", "10m")
	n1 := nodes[0]
	tok, project := faultProject(t, creds, n1.rackd)
	load := newFaultLoad(t, nodes, tok, project)
	a := faultAPIsSetUp(t, creds, load, n1.rackd)
	st := faultHealthy(t, creds, n1.rackd)
	var frozen *storageNode
	var alive []*storageNode
	for _, n := range nodes {
		if n.name != st.Leader && frozen == nil {
			frozen = n
			continue
		}
		alive = append(alive, n)
	}
	held := holdWork(t, a, frozen.rackd, alive[0].rackd)

	load.gen++
	a.runAPIs()
	stopped := false
	defer func() {
		if !stopped {
			load.end()
		}
	}()
	a.ackedAPIs(map[string]int{}, 3, time.Minute, "before any fault")
	before := load.snapshot()
	load.setUp(frozen.rackd, false)
	thaw := freeze(t, frozen.cmd.Process)
	defer thaw()
	t.Logf("froze %s", frozen.name)
	a.ackedAPIs(before, 3, 90*time.Second, "after freezing "+frozen.name)
	held.settled(t, alive[1].rackd)
	load.end()
	stopped = true
	load.mu.Lock()
	t.Logf("acknowledged %v; unknown outcome %v", load.acks, load.unknown)
	if len(load.bad) > 0 {
		t.Errorf("%d answers no fault explains:\n%s", len(load.bad), strings.Join(load.bad, "\n"))
	}
	load.mu.Unlock()

	// The image again, through a live node.
	data := randBytes(300 << 10)
	req, _ := http.NewRequest("PUT", alive[0].url()+"/image/v2/images/"+held.image+"/file", bytes.NewReader(data))
	req.Header.Set("X-Auth-Token", tok)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("upload again: %v %v", resp, err)
	}
	resp.Body.Close()
	vol := func() (string, any) {
		var v struct {
			Volume map[string]any `json:"volume"`
		}
		call("GET", alive[1].url()+"/volume/v3/"+project+"/volumes/"+held.volume, tok, nil, &v)
		return fmt.Sprint(v.Volume["status"]), v.Volume["rackstack:error_reason"]
	}
	settledStatus, _ := vol()

	// Thawed, the node's stalled upload ends (its client sends the rest)
	// and is answered; the node's work catches up.
	thaw()
	frozen.waitHealthy()
	faultHealthy(t, creds, alive[0].rackd)
	held.finish()
	select {
	case code := <-held.answered:
		if code/100 == 2 {
			t.Errorf("the upload given back was acknowledged when its node came back: HTTP %d", code)
		}
	case <-time.After(time.Minute):
		t.Fatal("the stalled upload was not answered within a minute of its node's thaw")
	}
	// Meanwhile, the image still has the data uploaded again and the
	// volume is still what was settled (an error may have become
	// available), not creating.
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(2 * time.Second) {
		for _, n := range nodes {
			if code, got := fetch(n.url()+"/image/v2/images/"+held.image+"/file", tok); code != 200 || got != sha(data) {
				t.Fatalf("image %s via %s after the stale upload ended: HTTP %d sha256 %s, want the data uploaded again (%s)", held.image, n.name, code, got, sha(data))
			}
		}
		if status, reason := vol(); status != settledStatus && !(settledStatus == "error" && status == "available") {
			t.Fatalf("volume %s settled %s is %s (%v) after its node came back", held.volume, settledStatus, status, reason)
		}
	}
	// What the workers were told, through every node. (Checked after the
	// thaw, as the workers' reads while it was frozen were checked as
	// they went; a read past a frozen node's shards, which hedges past
	// them, is TestFaultFrozenNodeReads'.)
	a.check(t, nodes)
}

// heldWork is work a node was doing when it was lost.
type heldWork struct {
	a        *faultAPIs
	image    string // an image whose upload it was receiving
	volume   string // a volume it was making from an image
	backups  []string
	stop     func()   // cuts the stalled upload's body short
	finish   func()   // sends the rest of it
	answered chan int // its answer's status (0: none)
}

// holdWork starts, through node via, work that lasts: an image upload
// whose body stalls, a volume made from a large image, backups of a
// written volume; helper is another node. The caller then kills via.
func holdWork(t *testing.T, a *faultAPIs, via, helper *rackd) *heldWork {
	t.Helper()
	h := &heldWork{a: a}
	base := func(n *rackd) string { return n.url() }
	mkImage := func(n *rackd, name string) string {
		var img struct{ ID string }
		if code, err := call("POST", base(n)+"/image/v2/images", a.tok, map[string]any{"name": name, "disk_format": "raw", "container_format": "bare"}, &img); err != nil || code != 201 {
			t.Fatalf("image %s: %d %v", name, code, err)
		}
		return img.ID
	}
	// A large image, uploaded through the helper.
	big := mkImage(helper, "held-big")
	req, _ := http.NewRequest("PUT", base(helper)+"/image/v2/images/"+big+"/file", bytes.NewReader(randBytes(48<<20)))
	req.Header.Set("X-Auth-Token", a.tok)
	req.Header.Set("Content-Type", "application/octet-stream")
	if resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("upload the large image: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// Volumes to back up, made and available.
	var src struct {
		Volume struct{ ID string } `json:"volume"`
	}
	if code, err := call("POST", base(helper)+"/volume/v3/"+a.project+"/volumes", a.tok, map[string]any{"volume": map[string]any{"size": 1, "imageRef": big, "name": "held-src"}}, &src); err != nil || code != 202 {
		t.Fatalf("source volume: %d %v", code, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var v struct {
			Volume struct{ Status string } `json:"volume"`
		}
		call("GET", base(helper)+"/volume/v3/"+a.project+"/volumes/"+src.Volume.ID, a.tok, nil, &v)
		if v.Volume.Status == "available" {
			break
		}
		if v.Volume.Status != "creating" || time.Now().After(deadline) {
			t.Fatalf("source volume is %q", v.Volume.Status)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Through via: an upload that stalls after its first MiB.
	h.image = mkImage(via, "held-upload")
	pr, pw := io.Pipe()
	go func() {
		pw.Write(randBytes(1 << 20))
		// then nothing, until the test ends
	}()
	h.stop = func() { pw.CloseWithError(io.ErrUnexpectedEOF) }
	t.Cleanup(h.stop)
	// finish sends the rest of the body.
	h.finish = func() {
		pw.Write(randBytes(7 << 20))
		pw.Close()
	}
	up, _ := http.NewRequest("PUT", base(via)+"/image/v2/images/"+h.image+"/file", pr)
	up.Header.Set("X-Auth-Token", a.tok)
	up.Header.Set("Content-Type", "application/octet-stream")
	up.ContentLength = 8 << 20
	h.answered = make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(up)
		if err != nil {
			h.answered <- 0
			return
		}
		resp.Body.Close()
		h.answered <- resp.StatusCode
	}()
	// A volume from the large image, and backups of the source.
	var v struct {
		Volume struct{ ID string } `json:"volume"`
	}
	if code, err := call("POST", base(via)+"/volume/v3/"+a.project+"/volumes", a.tok, map[string]any{"volume": map[string]any{"size": 1, "imageRef": big, "name": "held-copy"}}, &v); err != nil || code != 202 {
		t.Fatalf("volume from the image through %s: %d %v", via.name, code, err)
	}
	h.volume = v.Volume.ID
	for i := 0; i < 2; i++ {
		var b struct {
			Backup struct{ ID string } `json:"backup"`
		}
		if code, err := call("POST", base(via)+"/volume/v3/"+a.project+"/backups", a.tok, map[string]any{"backup": map[string]any{"volume_id": src.Volume.ID, "name": fmt.Sprintf("held-b%d", i), "force": true}}, &b); err != nil || code != 202 {
			t.Fatalf("backup through %s: %d %v", via.name, code, err)
		}
		h.backups = append(h.backups, b.Backup.ID)
	}
	// The upload is under way: the image is saving.
	deadline = time.Now().Add(30 * time.Second)
	for {
		var img struct{ Status string }
		call("GET", base(helper)+"/image/v2/images/"+h.image, a.tok, nil, &img)
		if img.Status == "saving" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stalled upload's image is %q, want saving", img.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return h
}

// settled waits (bounded) until the held work got to an honest state,
// read through n: the image queued again (or active had it finished), the
// volume and backups available or in error, each error with a reason.
func (h *heldWork) settled(t *testing.T, n *rackd) {
	t.Helper()
	a := h.a
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var img struct{ Status string }
		var v struct {
			Volume map[string]any `json:"volume"`
		}
		call("GET", n.url()+"/image/v2/images/"+h.image, a.tok, nil, &img)
		call("GET", n.url()+"/volume/v3/"+a.project+"/volumes/"+h.volume, a.tok, nil, &v)
		states := []string{"image " + img.Status, fmt.Sprintf("volume %v (%v)", v.Volume["status"], v.Volume["rackstack:error_reason"])}
		done := img.Status == "queued" && (v.Volume["status"] == "available" || v.Volume["status"] == "error" && v.Volume["rackstack:error_reason"] != nil)
		for _, id := range h.backups {
			var b struct {
				Backup map[string]any `json:"backup"`
			}
			call("GET", n.url()+"/volume/v3/"+a.project+"/backups/"+id, a.tok, nil, &b)
			states = append(states, fmt.Sprintf("backup %v (%v)", b.Backup["status"], b.Backup["fail_reason"]))
			done = done && (b.Backup["status"] == "available" || b.Backup["status"] == "error" && b.Backup["fail_reason"] != nil)
		}
		if done {
			t.Logf("held work settled: %s", strings.Join(states, ", "))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("work held by the lost node not settled: %s", strings.Join(states, ", "))
		}
		time.Sleep(2 * time.Second)
	}
}
