//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// Nova's image proxy (/images to 2.35, their metadata to 2.38) reads and
// writes through the image service of a real rackd: an image uploaded
// with the openstack CLI (which speaks Glance) is ACTIVE through Nova,
// metadata set through Nova are Glance's properties, and an image
// deleted through Nova is gone from Glance. On the same router, the
// floating IP proxy allocates and releases Neutron's floating IPs, and
// the usage audit log answers its report.
func TestNovaImageProxy(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/openstack")
	n := startDevCloud(t, "novaimg", "--disk", t.TempDir(), "--s3-listen", "off")
	creds := openrc(t, n.dataDir)
	admin := osEnv(creds, n)
	tok := token(t, n, creds["OS_USERNAME"], creds["OS_PASSWORD"], creds["OS_PROJECT_NAME"])
	nova := n.url() + "/compute/v2.1"

	raw := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(raw, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	out := openstack(t, admin, "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", raw,
		"--min-ram", "64", "--property", "distro=cirros", "-f", "json", "proxied")
	var img struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &img); err != nil || img.ID == "" {
		t.Fatalf("image create: %v\n%s", err, out)
	}

	code, body := novaCall(t, "GET", nova+"/images/"+img.ID, tok, "35", "")
	var show struct {
		Image struct {
			Status   string            `json:"status"`
			Progress int               `json:"progress"`
			MinRAM   int               `json:"minRam"`
			Size     int64             `json:"OS-EXT-IMG-SIZE:size"`
			Metadata map[string]string `json:"metadata"`
		} `json:"image"`
	}
	if json.Unmarshal([]byte(body), &show); code != 200 || show.Image.Status != "ACTIVE" || show.Image.Progress != 100 ||
		show.Image.MinRAM != 64 || show.Image.Size != 64<<10 || show.Image.Metadata["distro"] != "cirros" {
		t.Fatalf("GET /images/%s: %d %s", img.ID, code, body)
	}
	if code, body := novaCall(t, "GET", nova+"/images/detail?name=proxied", tok, "35", ""); code != 200 || !strings.Contains(body, img.ID) {
		t.Fatalf("GET /images/detail?name=proxied: %d %s", code, body)
	}
	if code, body := novaCall(t, "POST", nova+"/images/"+img.ID+"/metadata", tok, "38", `{"metadata": {"purpose": "itest"}}`); code != 200 || !strings.Contains(body, `"purpose":"itest"`) {
		t.Fatalf("POST metadata: %d %s", code, body)
	}
	if out := openstack(t, admin, "image", "show", "-f", "json", "-c", "properties", img.ID); !strings.Contains(out, `"purpose": "itest"`) {
		t.Fatalf("Glance's view of the metadata set through Nova:\n%s", out)
	}
	// Past 2.35 (2.38 for metadata) the proxy is gone, as in Nova.
	if code, _ := novaCall(t, "GET", nova+"/images/"+img.ID, tok, "36", ""); code != 404 {
		t.Fatalf("GET /images at 2.36: %d", code)
	}
	if code, _ := novaCall(t, "GET", nova+"/images/"+img.ID+"/metadata", tok, "39", ""); code != 404 {
		t.Fatalf("GET metadata at 2.39: %d", code)
	}
	if code, body := novaCall(t, "DELETE", nova+"/images/"+img.ID, tok, "35", ""); code != 204 {
		t.Fatalf("DELETE /images: %d %s", code, body)
	}
	if out, err := openstackErr(admin, "image", "show", img.ID); err == nil {
		t.Fatalf("the image deleted through Nova is still in Glance:\n%s", out)
	}

	// The floating IP proxy (to 2.35) allocates and releases the network
	// service's floating IPs: a pool is an external network, and what
	// Nova allocates Neutron shows (TestNovaFloatingIPProxy associates one
	// with a guest's port).
	openstack(t, admin, "network", "create", "--external", "fipext")
	openstack(t, admin, "subnet", "create", "--network", "fipext", "--subnet-range", "198.18.7.0/24", "fipext-sub")
	if code, body := novaCall(t, "GET", nova+"/os-floating-ip-pools", tok, "35", ""); code != 200 || !strings.Contains(body, `{"name":"fipext"}`) {
		t.Fatalf("GET /os-floating-ip-pools at 2.35: %d %s", code, body)
	}
	code, body = novaCall(t, "POST", nova+"/os-floating-ips", tok, "35", `{"pool": "fipext"}`)
	var fip struct {
		FIP struct {
			ID, IP, Pool string
		} `json:"floating_ip"`
	}
	if json.Unmarshal([]byte(body), &fip); code != 200 || fip.FIP.ID == "" || fip.FIP.Pool != "fipext" {
		t.Fatalf("POST /os-floating-ips at 2.35: %d %s", code, body)
	}
	if out := openstack(t, admin, "floating", "ip", "show", "-f", "value", "-c", "floating_ip_address", fip.FIP.ID); strings.TrimSpace(out) != fip.FIP.IP {
		t.Fatalf("Neutron's view of the floating IP allocated through Nova (%s): %q", fip.FIP.IP, out)
	}
	if code, _ := novaCall(t, "GET", nova+"/os-floating-ips", tok, "36", ""); code != 404 {
		t.Fatalf("GET /os-floating-ips at 2.36: %d", code)
	}
	if code, body := novaCall(t, "DELETE", nova+"/os-floating-ips/"+fip.FIP.ID, tok, "35", ""); code != 202 {
		t.Fatalf("DELETE /os-floating-ips: %d %s", code, body)
	}
	if out, err := openstackErr(admin, "floating", "ip", "show", fip.FIP.ID); err == nil {
		t.Fatalf("the floating IP released through Nova is still in Neutron:\n%s", out)
	}
	// os-networks (to 2.35) lists the network service's networks by id
	// and label; what was nova-network's alone is gone.
	if code, body := novaCall(t, "GET", nova+"/os-networks", tok, "35", ""); code != 200 || !strings.Contains(body, `"label":"fipext"`) {
		t.Fatalf("GET /os-networks at 2.35: %d %s", code, body)
	}
	if code, _ := novaCall(t, "POST", nova+"/os-networks", tok, "35", `{"network": {"label": "x"}}`); code != 410 {
		t.Fatalf("POST /os-networks: %d, want 410", code)
	}
	// The usage audit log reports that no host ran the audit.
	if code, body := novaCall(t, "GET", nova+"/os-instance_usage_audit_log", tok, "1", ""); code != 200 || !strings.Contains(body, `"num_hosts_done":0`) {
		t.Errorf("GET /os-instance_usage_audit_log: %d %s", code, body)
	}
}
