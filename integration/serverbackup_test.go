//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// checkServerBackup backs a running guest up twice with the openstack
// CLI (Nova's createBackup, server backup create --rotate 1 --wait):
// each backup is an active private image with image_type=backup, its
// backup_type and the server's id, and once the second is made the
// first is rotated out (deleted); the server is ACTIVE with no task.
func checkServerBackup(t *testing.T, alice []string, vm serverInfo) {
	t.Helper()
	backup := func(name string) string {
		t.Helper()
		out := openstack(t, alice, "server", "backup", "create", "--name", name, "--type", "daily", "--rotate", "1", "--wait", "-f", "json", vm.ID)
		var made struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(out), &made); err != nil || made.ID == "" {
			t.Fatalf("server backup create: %v\n%s", err, out)
		}
		var img map[string]any
		out = openstack(t, alice, "image", "show", "-f", "json", made.ID)
		if err := json.Unmarshal([]byte(out), &img); err != nil {
			t.Fatalf("image show: %v\n%s", err, out)
		}
		props, _ := json.Marshal(img["properties"])
		if img["status"] != "active" || img["visibility"] != "private" {
			t.Fatalf("the backup image: %s", out)
		}
		for _, want := range []string{`"image_type":"backup"`, `"backup_type":"daily"`, `"instance_uuid":"` + vm.ID + `"`} {
			if !bytes.Contains(props, []byte(want)) {
				t.Errorf("the backup's properties lack %s: %s", want, props)
			}
		}
		return made.ID
	}
	first := backup("daily-1")
	second := backup("daily-2")
	gone := eventually(time.Minute, func() bool {
		out, err := openstackErr(alice, "image", "show", first)
		return err != nil && (strings.Contains(out, "No Image found") || strings.Contains(out, "404"))
	})
	if !gone {
		t.Errorf("the first backup %s was not rotated out by the second (rotation 1)", first)
	}
	if _, err := openstackErr(alice, "image", "show", second); err != nil {
		t.Errorf("the second backup %s is gone: %v", second, err)
	}
	if s := showServer(t, alice, vm.ID); s.Status != "ACTIVE" {
		t.Errorf("after its backups %s is %s", vm.ID, s.Status)
	}
}
