package volume

import (
	"net/http"
	"strings"
	"testing"
)

// The default quota class is every project's limits where it has no
// override of its own: its change shows in os-quota-sets' defaults and
// is enforced.
func TestDefaultQuotaClassFeedsProjectDefaults(t *testing.T) {
	f := newFixture(t)
	got := f.expect(http.StatusOK, "GET", "os-quota-class-sets/default", admin, nil).Body["quota_class_set"].(map[string]any)
	if got["id"] != "default" || got["volumes"] != float64(10) || got["per_volume_gigabytes"] != float64(-1) {
		t.Fatalf("default class %v", got)
	}
	f.expect(http.StatusForbidden, "GET", "os-quota-class-sets/default", alice, nil)
	f.expect(http.StatusForbidden, "PUT", "os-quota-class-sets/default", alice, map[string]any{"quota_class_set": map[string]any{"volumes": 1}})
	up := f.expect(http.StatusOK, "PUT", "os-quota-class-sets/default", admin, map[string]any{"quota_class_set": map[string]any{"volumes": 1}}).Body["quota_class_set"].(map[string]any)
	if up["volumes"] != float64(1) || up["snapshots"] != float64(10) {
		t.Fatalf("update answer %v", up)
	}
	def := f.expect(http.StatusOK, "GET", "os-quota-sets/"+projB+"/defaults", bob, nil).Body["quota_set"].(map[string]any)
	if def["volumes"] != float64(1) {
		t.Fatalf("project defaults %v", def)
	}
	f.createVolume(bob, map[string]any{"size": 1})
	f.expect(http.StatusRequestEntityTooLarge, "POST", "volumes", bob, map[string]any{"volume": map[string]any{"size": 1}})
	// A project's own override still wins over the class.
	f.expect(http.StatusOK, "PUT", "os-quota-sets/"+projB, admin, map[string]any{"quota_set": map[string]any{"volumes": 2}})
	f.createVolume(bob, map[string]any{"size": 1})

	r := f.expect(http.StatusBadRequest, "PUT", "os-quota-class-sets/default", admin, map[string]any{"quota_class_set": map[string]any{"cores": 2}})
	if _, msg := fault(t, r); !strings.Contains(msg, "cores") {
		t.Fatalf("bad key: %s", msg)
	}
	r = f.expect(http.StatusBadRequest, "PUT", "os-quota-class-sets/default", admin, map[string]any{"quota_class_set": map[string]any{"volumes": -2}})
	if _, msg := fault(t, r); !strings.Contains(msg, "volumes") {
		t.Fatalf("bad value: %s", msg)
	}
	// Another class is kept and shown, and limits nobody.
	f.expect(http.StatusOK, "PUT", "os-quota-class-sets/gold", admin, map[string]any{"quota_class_set": map[string]any{"volumes": 50}})
	if got := f.expect(http.StatusOK, "GET", "os-quota-class-sets/gold", admin, nil).Body["quota_class_set"].(map[string]any); got["volumes"] != float64(50) {
		t.Fatalf("gold %v", got)
	}
	if def := f.expect(http.StatusOK, "GET", "os-quota-sets/"+projA+"/defaults", alice, nil).Body["quota_set"].(map[string]any); def["volumes"] != float64(1) {
		t.Fatalf("defaults after gold %v", def)
	}
}

// Per-type quotas (volumes_<type>, gigabytes_<type>, snapshots_<type>)
// are listed for every type and enforced on that type's volumes only.
func TestPerTypeQuotasAreEnforced(t *testing.T) {
	f := newFixture(t)
	f.expect(http.StatusOK, "POST", "types", admin, map[string]any{"volume_type": map[string]any{"name": "fast"}})
	got := f.expect(http.StatusOK, "GET", "os-quota-class-sets/default", admin, nil).Body["quota_class_set"].(map[string]any)
	if got["volumes_fast"] != float64(-1) || got["gigabytes___DEFAULT__"] != float64(-1) {
		t.Fatalf("per-type entries %v", got)
	}
	f.expect(http.StatusOK, "PUT", "os-quota-class-sets/default", admin, map[string]any{"quota_class_set": map[string]any{"volumes_fast": 1, "snapshots_fast": 0}})
	if def := f.expect(http.StatusOK, "GET", "os-quota-sets/"+projB+"/defaults", bob, nil).Body["quota_set"].(map[string]any); def["volumes_fast"] != float64(1) {
		t.Fatalf("project defaults %v", def)
	}
	fast := f.createVolume(bob, map[string]any{"size": 1, "volume_type": "fast"})["id"].(string)
	r := f.expect(http.StatusRequestEntityTooLarge, "POST", "volumes", bob, map[string]any{"volume": map[string]any{"size": 1, "volume_type": "fast"}})
	if _, msg := fault(t, r); !strings.Contains(msg, "volumes_fast") {
		t.Fatalf("over volumes_fast: %s", msg)
	}
	f.createVolume(bob, map[string]any{"size": 1}) // another type: not limited
	f.expect(http.StatusRequestEntityTooLarge, "POST", "snapshots", bob, map[string]any{"snapshot": map[string]any{"volume_id": fast}})
	f.expect(http.StatusBadRequest, "PUT", "os-quota-sets/"+projB, admin, map[string]any{"quota_set": map[string]any{"volumes_slow": 1}})
	f.expect(http.StatusOK, "PUT", "os-quota-sets/"+projB, admin, map[string]any{"quota_set": map[string]any{"volumes_fast": 2}})
	f.createVolume(bob, map[string]any{"size": 1, "volume_type": "fast"})
}
