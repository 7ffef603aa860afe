package volume

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

func TestQoSSpecsLifecycleAndAssociations(t *testing.T) {
	f := newFixture(t)
	create := map[string]any{"qos_specs": map[string]any{"name": "gold", "consumer": "front-end", "read_iops_sec": "2000", "write_bytes_sec": 1048576}}
	f.expect(http.StatusForbidden, "POST", "qos-specs", alice, create)
	r := f.expect(http.StatusOK, "POST", "qos-specs", admin, create)
	q := r.Body["qos_specs"].(map[string]any)
	id := q["id"].(string)
	if q["name"] != "gold" || q["consumer"] != "front-end" || q["specs"].(map[string]any)["write_bytes_sec"] != "1048576" || r.Body["links"] == nil {
		t.Fatalf("create %s", r.Raw)
	}
	f.expect(http.StatusConflict, "POST", "qos-specs", admin, create)
	list := f.expect(http.StatusOK, "GET", "qos-specs", admin, nil).Body["qos_specs"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != id {
		t.Fatalf("list %v", list)
	}
	f.expect(http.StatusForbidden, "GET", "qos-specs", alice, nil)

	set := f.expect(http.StatusOK, "PUT", "qos-specs/"+id, admin, map[string]any{"qos_specs": map[string]any{"write_iops_sec": "10"}}).Body["qos_specs"].(map[string]any)
	if len(set) != 1 || set["write_iops_sec"] != "10" {
		t.Fatalf("set answer %v", set)
	}
	f.expect(http.StatusAccepted, "PUT", "qos-specs/"+id+"/delete_keys", admin, map[string]any{"keys": []string{"write_iops_sec"}})
	f.expect(http.StatusNotFound, "PUT", "qos-specs/"+id+"/delete_keys", admin, map[string]any{"keys": []string{"write_iops_sec"}})
	specs := f.expect(http.StatusOK, "GET", "qos-specs/"+id, admin, nil).Body["qos_specs"].(map[string]any)["specs"].(map[string]any)
	if len(specs) != 2 || specs["read_iops_sec"] != "2000" {
		t.Fatalf("specs after unset %v", specs)
	}

	var types []string
	for _, n := range []string{"t1", "t2"} {
		made := f.expect(http.StatusOK, "POST", "types", admin, map[string]any{"volume_type": map[string]any{"name": n}}).Body["volume_type"].(map[string]any)
		if _, shown := made["qos_specs_id"]; shown {
			t.Fatal("a create answer carries qos_specs_id, which Cinder's does not")
		}
		types = append(types, made["id"].(string))
		f.expect(http.StatusAccepted, "GET", "qos-specs/"+id+"/associate?vol_type_id="+types[len(types)-1], admin, nil)
	}
	assoc := f.expect(http.StatusOK, "GET", "qos-specs/"+id+"/associations", admin, nil).Body["qos_associations"].([]any)
	if len(assoc) != 2 || assoc[0].(map[string]any)["association_type"] != "volume_type" {
		t.Fatalf("associations %v", assoc)
	}
	if got := f.expect(http.StatusOK, "GET", "types/"+types[0], admin, nil).Body["volume_type"].(map[string]any)["qos_specs_id"]; got != id {
		t.Fatalf("type's qos_specs_id %v", got)
	}
	if _, shown := f.expect(http.StatusOK, "GET", "types/"+types[0], alice, nil).Body["volume_type"].(map[string]any)["qos_specs_id"]; shown {
		t.Fatal("a member sees the type's qos_specs_id")
	}
	if _, shown := f.expect(http.StatusOK, "PUT", "types/"+types[0], admin, map[string]any{"volume_type": map[string]any{"description": "d"}}).Body["volume_type"].(map[string]any)["qos_specs_id"]; shown {
		t.Fatal("an update answer carries qos_specs_id, which Cinder's does not")
	}
	other := f.expect(http.StatusOK, "POST", "qos-specs", admin, map[string]any{"qos_specs": map[string]any{"name": "silver", "consumer": "both"}}).Body["qos_specs"].(map[string]any)["id"].(string)
	f.expect(http.StatusBadRequest, "GET", "qos-specs/"+other+"/associate?vol_type_id="+types[0], admin, nil)
	f.expect(http.StatusNotFound, "GET", "qos-specs/"+other+"/associate?vol_type_id=no-such-type", admin, nil)
	// In use: deleted only with force, which disassociates.
	f.expect(http.StatusBadRequest, "DELETE", "qos-specs/"+id, admin, nil)
	f.expect(http.StatusAccepted, "GET", "qos-specs/"+id+"/disassociate?vol_type_id="+types[0], admin, nil)
	if got := f.expect(http.StatusOK, "GET", "qos-specs/"+id+"/associations", admin, nil).Body["qos_associations"].([]any); len(got) != 1 {
		t.Fatalf("after disassociate %v", got)
	}
	f.expect(http.StatusAccepted, "GET", "qos-specs/"+id+"/disassociate_all", admin, nil)
	if got := f.expect(http.StatusOK, "GET", "qos-specs/"+id+"/associations", admin, nil).Body["qos_associations"].([]any); len(got) != 0 {
		t.Fatalf("after disassociate_all %v", got)
	}
	f.expect(http.StatusAccepted, "GET", "qos-specs/"+id+"/associate?vol_type_id="+types[1], admin, nil)
	f.expect(http.StatusAccepted, "DELETE", "qos-specs/"+id+"?force=true", admin, nil)
	f.expect(http.StatusNotFound, "GET", "qos-specs/"+id, admin, nil)
	if got := f.expect(http.StatusOK, "GET", "types/"+types[1], admin, nil).Body["volume_type"].(map[string]any)["qos_specs_id"]; got != nil {
		t.Fatalf("force delete left the association: %v", got)
	}
}

// A spec never holds a limit this cloud would not enforce: the refusal
// names the key.
func TestQoSSpecsRefuseLimitsNotEnforced(t *testing.T) {
	f := newFixture(t)
	for name, c := range map[string]struct {
		specs map[string]any
		key   string
	}{
		"unknown key":          {map[string]any{"consumer": "front-end", "iops_bytes": "500"}, "iops_bytes"},
		"burst not enforced":   {map[string]any{"consumer": "both", "read_iops_sec_max": "500"}, "read_iops_sec_max"},
		"per-GB not enforced":  {map[string]any{"consumer": "both", "total_iops_sec_per_gb": "5"}, "total_iops_sec_per_gb"},
		"back-end limit":       {map[string]any{"consumer": "back-end", "read_iops_sec": "500"}, "read_iops_sec"},
		"default is back-end":  {map[string]any{"write_iops_sec": "500"}, "write_iops_sec"},
		"not a number":         {map[string]any{"consumer": "front-end", "read_iops_sec": "fast"}, "read_iops_sec"},
		"zero":                 {map[string]any{"consumer": "front-end", "read_bytes_sec": "0"}, "read_bytes_sec"},
		"total with read":      {map[string]any{"consumer": "front-end", "total_iops_sec": "9", "read_iops_sec": "5"}, "total_iops_sec"},
		"unknown consumer":     {map[string]any{"consumer": "middle"}, "middle"},
		"object value refused": {map[string]any{"consumer": "front-end", "read_iops_sec": map[string]any{}}, "read_iops_sec"},
	} {
		t.Run(name, func(t *testing.T) {
			c.specs["name"] = "q-" + strings.ReplaceAll(name, " ", "-")
			r := f.expect(http.StatusBadRequest, "POST", "qos-specs", admin, map[string]any{"qos_specs": c.specs})
			if _, msg := fault(t, r); !strings.Contains(msg, c.key) {
				t.Fatalf("message %q does not name %s", msg, c.key)
			}
		})
	}
	id := f.expect(http.StatusOK, "POST", "qos-specs", admin, map[string]any{"qos_specs": map[string]any{"name": "ok", "consumer": "front-end", "read_iops_sec": "5"}}).Body["qos_specs"].(map[string]any)["id"].(string)
	f.expect(http.StatusBadRequest, "PUT", "qos-specs/"+id, admin, map[string]any{"qos_specs": map[string]any{"iops_bytes": "500"}})
	// Turning a spec with limits into a back-end one would leave them
	// unenforced.
	f.expect(http.StatusBadRequest, "PUT", "qos-specs/"+id, admin, map[string]any{"qos_specs": map[string]any{"consumer": "back-end"}})
	specs := f.expect(http.StatusOK, "GET", "qos-specs/"+id, admin, nil).Body["qos_specs"].(map[string]any)
	if specs["consumer"] != "front-end" || len(specs["specs"].(map[string]any)) != 1 {
		t.Fatalf("refused changes changed the spec: %v", specs)
	}
}

// QoSLimits is what the node agent applies: the front-end limits of the
// volume's type's spec.
func TestQoSLimitsFollowTheTypesSpec(t *testing.T) {
	f := newFixture(t)
	typ := f.expect(http.StatusOK, "POST", "types", admin, map[string]any{"volume_type": map[string]any{"name": "capped"}}).Body["volume_type"].(map[string]any)["id"].(string)
	id := f.expect(http.StatusOK, "POST", "qos-specs", admin, map[string]any{"qos_specs": map[string]any{"name": "cap", "consumer": "both", "total_iops_sec": "300", "read_bytes_sec": "1000000"}}).Body["qos_specs"].(map[string]any)["id"].(string)
	limits := func() map[string]int64 {
		tx, err := store.Current(context.Background(), f.local)
		if err != nil {
			t.Fatal(err)
		}
		return volstate.QoSLimits(tx, typ)
	}
	if got := limits(); len(got) != 0 {
		t.Fatalf("before association %v", got)
	}
	f.expect(http.StatusAccepted, "GET", "qos-specs/"+id+"/associate?vol_type_id="+typ, admin, nil)
	if got := limits(); len(got) != 2 || got[volstate.QoSTotalIOPS] != 300 || got[volstate.QoSReadBytes] != 1000000 {
		t.Fatalf("after association %v", got)
	}
}
