package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A dev cloud declares its own realm unless given a file; rackd serve has
// none; a realms file is read and checked, and the current cluster must
// be one of it.
func TestContainerSyncRealms(t *testing.T) {
	o := &options{Name: "dev", Listen: "127.0.0.1:8770", Advertise: "127.0.0.1"}
	rs, err := containerSyncRealms(o, true)
	if err != nil || rs.Empty() || strings.Join(rs.Names(), ",") != "RACKSTACK" || o.ContainerSyncCurrent != "//rackstack/dev" {
		t.Fatalf("dev default: %v %v %q", rs, err, o.ContainerSyncCurrent)
	}
	if rs, err := containerSyncRealms(&options{Name: "n1", Listen: "127.0.0.1:8770"}, false); rs != nil || err != nil {
		t.Fatalf("serve without a file: %v %v", rs, err)
	}
	if _, err := containerSyncRealms(&options{Name: "n1", ContainerSyncCurrent: "//a/b"}, false); err == nil {
		t.Fatal("--container-sync-current without realms was accepted")
	}
	file := filepath.Join(t.TempDir(), "realms.conf")
	os.WriteFile(file, []byte("[r1]\nkey = k\ncluster_c1 = https://h/object/v1/\n"), 0o600)
	if rs, err := containerSyncRealms(&options{ContainerSyncRealms: file, ContainerSyncCurrent: "//r1/c1"}, true); err != nil || strings.Join(rs.Names(), ",") != "R1" {
		t.Fatalf("from a file: %v %v", rs, err)
	}
	if _, err := containerSyncRealms(&options{ContainerSyncRealms: file, ContainerSyncCurrent: "//r1/c9"}, false); err == nil {
		t.Fatal("an undeclared current cluster was accepted")
	}
	os.WriteFile(file, []byte("[r1]\ncluster_c1 = https://h/object/v1/\n"), 0o600)
	if _, err := containerSyncRealms(&options{ContainerSyncRealms: file}, false); err == nil {
		t.Fatal("a realm without a key was accepted")
	}
}
