package volume

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// Services, hosts, pools and capabilities describe the cluster: each
// node's scheduler and backup service, up or down with the node, and the
// one cluster-wide cinder-volume host that volumes name.
func TestServicesHostsAndPools(t *testing.T) {
	seen := time.Date(2026, 12, 5, 11, 59, 0, 0, time.UTC)
	f := newFixture(t, func(c *Config) {
		c.Nodes = func(context.Context) ([]NodeState, error) {
			return []NodeState{{Name: "n1", Up: true, Seen: seen}, {Name: "n2", Up: false, Seen: seen.Add(-time.Hour)}}, nil
		}
	})
	vol := f.createVolume(alice, map[string]any{"size": 3})["id"].(string)
	f.expect(http.StatusForbidden, "GET", "os-services", alice, nil)
	svcs := f.expect(http.StatusOK, "GET", "os-services", admin, nil).Body["services"].([]any)
	state := map[string]string{}
	for _, s := range svcs {
		m := s.(map[string]any)
		state[m["binary"].(string)+"/"+m["host"].(string)] = m["state"].(string)
	}
	want := map[string]string{"cinder-scheduler/n1": "up", "cinder-backup/n1": "up", "cinder-scheduler/n2": "down", "cinder-backup/n2": "down", "cinder-volume/rackstack@block": "up"}
	if len(state) != len(want) {
		t.Fatalf("services %v", state)
	}
	for k, v := range want {
		if state[k] != v {
			t.Errorf("%s: %q, want %q", k, state[k], v)
		}
	}
	host := f.showVolume(admin, vol)["os-vol-host-attr:host"].(string)
	if got := f.expect(http.StatusOK, "GET", "os-services?binary=cinder-volume&host=rackstack", admin, nil).Body["services"].([]any); len(got) != 1 || host != volumePool {
		t.Fatalf("volume host %s, its service %v", host, got)
	}
	if got := f.expect(http.StatusOK, "GET", "os-services?host=n2", admin, nil).Body["services"].([]any); len(got) != 2 {
		t.Fatalf("n2's services %v", got)
	}
	f.expect(http.StatusNotFound, "PUT", "os-services/enable", admin, map[string]any{"host": "nowhere", "binary": "cinder-volume"})
	f.expect(http.StatusNotFound, "PUT", "os-services/disable", admin, map[string]any{"host": "n1", "binary": "cinder-nothing"})
	f.expect(http.StatusBadRequest, "PUT", "os-services/disable-log-reason", admin, map[string]any{"host": "n1", "binary": "cinder-scheduler", "disabled_reason": nil})
	f.expect(http.StatusBadRequest, "PUT", "os-services/freeze", admin, map[string]any{"host": "nowhere"})
	f.expect(http.StatusNotImplemented, "PUT", "os-services/disable", admin, map[string]any{"host": "n1", "binary": "cinder-scheduler"})

	if hosts := f.expect(http.StatusOK, "GET", "os-hosts", admin, nil).Body["hosts"].([]any); len(hosts) != 5 {
		t.Fatalf("hosts %v", hosts)
	}
	usage := f.expect(http.StatusOK, "GET", "os-hosts/"+volumeHost, admin, nil).Body["host"].([]any)
	total := usage[0].(map[string]any)["resource"].(map[string]any)
	if len(usage) != 2 || total["project"] != "(total)" || total["volume_count"] != "1" || total["total_volume_gb"] != "3" {
		t.Fatalf("host usage %v", usage)
	}
	f.expect(http.StatusNotFound, "GET", "os-hosts/n1", admin, nil)

	pools := f.expect(http.StatusOK, "GET", "scheduler-stats/get_pools?detail=true", admin, nil).Body["pools"].([]any)
	caps := pools[0].(map[string]any)["capabilities"].(map[string]any)
	if pools[0].(map[string]any)["name"] != volumePool || caps["vendor_name"] != vendorName || caps["allocated_capacity_gb"] != float64(3) || caps["total_capacity_gb"] != "unknown" {
		t.Fatalf("pools %v", pools)
	}
	c := f.expect(http.StatusOK, "GET", "capabilities/"+volumePool, admin, nil).Body
	if c["vendor_name"] != caps["vendor_name"] || c["storage_protocol"] != caps["storage_protocol"] || c["volume_backend_name"] != caps["volume_backend_name"] {
		t.Fatalf("capabilities %v, pool %v", c, caps)
	}
	f.expect(http.StatusNotFound, "GET", "capabilities/elsewhere@x", admin, nil)
	// By host alone, as Cinder matches a name without '@'; a prefix of it
	// is another host.
	f.expect(http.StatusOK, "GET", "capabilities/rackstack", admin, nil)
	f.expect(http.StatusNotFound, "GET", "capabilities/rack", admin, nil)

	az := f.expect(http.StatusOK, "GET", "os-availability-zone", alice, nil).Body["availabilityZoneInfo"].([]any)
	if len(az) != 1 || az[0].(map[string]any)["zoneName"] != "nova" {
		t.Fatalf("zones %v", az)
	}
	if ext := f.expect(http.StatusOK, "GET", "extensions", alice, nil).Body["extensions"].([]any); len(ext) != len(extensions) {
		t.Fatalf("extensions %v", ext)
	}
}
