package baremetal

import "testing"

// ?detail=true asks for one detailed list; it must not turn every later
// list of that route into a detailed one (the handler's flag was shared
// by all requests), nor make /v1/nodes?detail=true look like
// /v1/nodes/detail?detail=true and be refused.
func TestDetailQueryIsPerRequest(t *testing.T) {
	f := newFixture(t)
	n := f.createNode(map[string]any{"driver": "fake-hardware"})["uuid"].(string)
	f.expect(201, "POST", "/v1/ports", admin, map[string]any{"address": "52:54:00:aa:00:09", "node_uuid": n})
	for _, c := range []struct{ path, key, field string }{
		{"/v1/nodes", "nodes", "driver_info"},
		{"/v1/ports", "ports", "extra"},
	} {
		for i := 0; i < 2; i++ {
			l := f.expect(200, "GET", c.path+"?detail=true", admin, nil).Body[c.key].([]any)
			if _, ok := l[0].(map[string]any)[c.field]; !ok {
				t.Fatalf("%s?detail=true (%d): no %s in %v", c.path, i, c.field, l[0])
			}
		}
		l := f.expect(200, "GET", c.path, admin, nil).Body[c.key].([]any)
		if _, ok := l[0].(map[string]any)[c.field]; ok {
			t.Fatalf("%s after a ?detail=true: detailed %v", c.path, l[0])
		}
	}
}
