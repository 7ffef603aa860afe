package objectapi

import (
	"encoding/json"
	"testing"
)

// rackctl and scripts read a disk's fields at the top level of each entry
// of "disks", as they were when the status embedded the schema row.
func TestDiskFieldsAreFlat(t *testing.T) {
	b, err := json.Marshal(DiskStatus{Disk: Disk{ID: "d1", Node: "n1", Gone: true}, Up: true, Shards: 3})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"id": "d1", "node": "n1", "gone": true, "up": true, "shards": 3.0} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v (in %s)", k, got[k], want, b)
		}
	}
}
