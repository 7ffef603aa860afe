//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// novadevNetnsEnv names the namespace TestNovaDeviceTags runs in, once
// it has re-executed itself there.
const novadevNetnsEnv = "RACKSTACK_NOVADEV_NETNS"

// TestNovaDeviceTags drives what tempest and gophercloud found missing
// in the compute API, with the real openstack CLI against a real rackd
// and a TCG guest. rackd makes the metadata veth where it runs, so the
// test runs itself, rackd, QEMU and the CLI in a namespace of its own
// (as TestLayer3).
//   - Device tags: a server made at 2.43 (the CLI's least for NIC tags) with a tagged NIC and a tagged
//     volume; its guest prints the devices of its config drive (tags, no
//     addresses: written before the guest starts) and, in a loop, those
//     of the metadata service (tags at the PCI addresses QEMU gave the
//     devices); a volume attached with a tag (2.49) and a network with
//     a tag appear there at their addresses, and os-volume_attachments
//     and os-interface show the tags (2.70). Stopped and started, the
//     guest's new config drive lists them too.
//   - Server diagnostics (admin): the CLI's server show --diagnostics and
//     the 2.48 API read the running QEMU (one vCPU that has run, the NIC
//     that took DHCP's traffic, the disks, the flavor's memory); a
//     stopped server is 409.
//   - Forced-down services: compute service set --down (2.11) makes the
//     node's nova-compute down in the service list, and --up brings it
//     back; 2.96 shows pinned_availability_zone.
func TestNovaDeviceTags(t *testing.T) {
	testenv.RequireRoot(t, "make network namespaces, taps and load BPF programs")
	for _, c := range []string{"/usr/bin/openstack", "qemu-system-x86_64", "qemu-img", "genisoimage", "ip"} {
		testenv.RequireCommand(t, c)
	}
	img := testImage(t)
	if inOwnNetns(t, novadevNetnsEnv, "nd") {
		return
	}

	bpfDir := fmt.Sprintf("/sys/fs/bpf/rackstack-nd%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll(bpfDir) })
	n := startDevCloud(t, "novadev", "--disk", t.TempDir(), "--dataplane", "on", "--bpf-dir", bpfDir, "--compute", "on", "--accel", "tcg",
		"--s3-listen", "off", "--public", "off")
	creds := openrc(t, n.dataDir)
	admin := osEnv(creds, n)
	alice := osEnv(creds, n, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo")
	setupTestimgAndAlice(t, admin, img)
	deleteServersAtCleanup(t, admin)
	var vol1, vol2 volumeInfo
	inParallel(t, "resources", map[string]func(t *testing.T){
		"net": func(t *testing.T) {
			openstack(t, alice, "network", "create", "net1")
			openstack(t, alice, "subnet", "create", "--network", "net1", "--subnet-range", "10.50.1.0/24", "sub1")
			openstack(t, alice, "network", "create", "net2")
			openstack(t, alice, "subnet", "create", "--network", "net2", "--subnet-range", "10.50.2.0/24", "sub2")
			openstack(t, alice, "router", "create", "r1")
			openstack(t, alice, "router", "add", "subnet", "r1", "sub1")
		},
		"volumes": func(t *testing.T) {
			vol1 = createVolume(t, alice, "--size", "1", "ndvol1")
			vol2 = createVolume(t, alice, "--size", "1", "ndvol2")
		},
	})
	waitVolume(t, alice, "ndvol1", "available", time.Minute)
	waitVolume(t, alice, "ndvol2", "available", time.Minute)

	// The guest prints its config drive's devices once a boot, and the
	// metadata service's each time they change.
	script := filepath.Join(t.TempDir(), "devices.sh")
	if err := os.WriteFile(script, []byte(`#!/bin/sh
devs() { sed -n 's/.*"devices":\(.*\),"hostname".*/\1/p'; }
get() { printf 'GET %s HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n' "$1" | nc -w 5 169.254.169.254 80; }
echo "DEVTAG-CD=$(devs </mnt/config/openstack/latest/meta_data.json)"
( last=; while true; do d=$(get /openstack/latest/meta_data.json | devs); if [ -n "$d" ] && [ "$d" != "$last" ]; then echo "DEVTAG-MD=$d"; last=$d; fi; sleep 2; done ) &
`), 0o644); err != nil {
		t.Fatal(err)
	}
	net1 := strings.TrimSpace(openstack(t, alice, "network", "show", "-f", "value", "-c", "id", "net1"))
	openstack(t, alice, "--os-compute-api-version", "2.43", "server", "create", "--image", "testimg", "--flavor", "m1.tiny",
		"--nic", "net-id="+net1+",tag=nic-one",
		"--block-device", "uuid="+vol1.ID+",source_type=volume,destination_type=volume,boot_index=1,tag=vol-one",
		"--user-data", script, "--wait", "ndvm")
	vm := showServer(t, alice, "ndvm")

	// lastDevices is the last devices line the guest printed with prefix
	// that has every one of tags, once it has printed one.
	type device struct {
		Type, Bus, Address, MAC, Serial string
		Tags                            []string
	}
	lastDevices := func(prefix string, wait time.Duration, tags ...string) ([]device, string) {
		t.Helper()
		var got []device
		var console string
		ok := eventually(wait, func() bool {
			console, _ = openstackErr(alice, "console", "log", "show", "ndvm")
			for _, l := range strings.Split(console, "\n") {
				rest, found := strings.CutPrefix(strings.TrimSpace(l), prefix+"=")
				if !found {
					continue
				}
				var ds []device
				if json.Unmarshal([]byte(rest), &ds) != nil {
					continue
				}
				n := 0
				for _, tag := range tags {
					for _, d := range ds {
						if len(d.Tags) == 1 && d.Tags[0] == tag && (prefix == "DEVTAG-CD" || d.Address != "") {
							n++
						}
					}
				}
				if n == len(tags) {
					got = ds
				}
			}
			return got != nil
		})
		if !ok {
			t.Fatalf("the guest never printed %s with %v (and their addresses):\n%s", prefix, tags, console)
		}
		return got, console
	}
	pci := regexp.MustCompile(`^0000:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)
	byTag := func(ds []device, tag string) device {
		for _, d := range ds {
			if len(d.Tags) == 1 && d.Tags[0] == tag {
				return d
			}
		}
		t.Fatalf("no device tagged %s in %+v", tag, ds)
		return device{}
	}
	ports := func() map[string]string { // port id → MAC
		out := openstack(t, alice, "port", "list", "--server", vm.ID, "-f", "json", "-c", "ID", "-c", "MAC Address")
		var ps []struct {
			ID  string `json:"ID"`
			MAC string `json:"MAC Address"`
		}
		if err := json.Unmarshal([]byte(out), &ps); err != nil {
			t.Fatalf("port list: %v\n%s", err, out)
		}
		m := map[string]string{}
		for _, p := range ps {
			m[p.ID] = p.MAC
		}
		return m
	}
	macs := ports()
	cd, _ := lastDevices("DEVTAG-CD", 4*time.Minute, "nic-one", "vol-one")
	if d := byTag(cd, "nic-one"); d.Type != "nic" || d.Bus != "pci" || d.Address != "" || len(macs) != 1 {
		t.Fatalf("config drive's nic %+v (ports %v)", d, macs)
	}
	for _, mac := range macs {
		if byTag(cd, "nic-one").MAC != mac {
			t.Fatalf("config drive's nic %+v, port MAC %s", byTag(cd, "nic-one"), mac)
		}
	}
	if d := byTag(cd, "vol-one"); d.Type != "disk" || d.Serial != vol1.ID || len(cd) != 2 {
		t.Fatalf("config drive's devices %+v", cd)
	}
	md, _ := lastDevices("DEVTAG-MD", 2*time.Minute, "nic-one", "vol-one")
	nic, disk := byTag(md, "nic-one"), byTag(md, "vol-one")
	if !pci.MatchString(nic.Address) || !pci.MatchString(disk.Address) || nic.Address == disk.Address || disk.Serial != vol1.ID {
		t.Fatalf("metadata service's devices %+v", md)
	}

	// A volume and a network attached with tags (2.49) are listed at
	// their addresses once plugged.
	openstack(t, alice, "--os-compute-api-version", "2.49", "server", "add", "volume", "--tag", "vol-two", "ndvm", "ndvol2")
	openstack(t, alice, "--os-compute-api-version", "2.49", "server", "add", "network", "--tag", "nic-two", "ndvm", "net2")
	md, _ = lastDevices("DEVTAG-MD", 2*time.Minute, "nic-one", "vol-one", "vol-two", "nic-two")
	if d := byTag(md, "vol-two"); d.Serial != vol2.ID || !pci.MatchString(d.Address) || d.Address == disk.Address {
		t.Fatalf("attached volume %+v in %+v", d, md)
	}
	t.Logf("the guest's metadata devices: %+v", md)
	tok := token(t, n, "alice", "alice-pass-1", "demo")
	base := n.url() + "/compute/v2.1/servers/" + vm.ID
	if code, out := novaCall(t, "GET", base+"/os-volume_attachments", tok, "70", ""); code != 200 ||
		!strings.Contains(out, `"tag":"vol-one"`) || !strings.Contains(out, `"tag":"vol-two"`) {
		t.Fatalf("os-volume_attachments at 2.70: %d %s", code, out)
	}
	if code, out := novaCall(t, "GET", base+"/os-interface", tok, "70", ""); code != 200 ||
		!strings.Contains(out, `"tag":"nic-one"`) || !strings.Contains(out, `"tag":"nic-two"`) {
		t.Fatalf("os-interface at 2.70: %d %s", code, out)
	}

	// Diagnostics, from the running QEMU.
	out := openstack(t, admin, "--os-compute-api-version", "2.48", "server", "show", "--diagnostics", "-f", "json", vm.ID)
	var diag struct {
		State, Driver, Hypervisor string
		NumCPUs                   int `json:"num_cpus"`
		NumDisks                  int `json:"num_disks"`
		NumNICs                   int `json:"num_nics"`
		CPUs                      []struct {
			Time int64 `json:"time"`
		} `json:"cpu_details"`
		NICs []struct {
			MAC string `json:"mac_address"`
			Rx  int64  `json:"rx_octets"`
			Tx  int64  `json:"tx_octets"`
		} `json:"nic_details"`
		Disks []struct {
			ReadBytes int64 `json:"read_bytes"`
		} `json:"disk_details"`
		Memory struct {
			Maximum int `json:"maximum"`
		} `json:"memory_details"`
	}
	if err := json.Unmarshal([]byte(out), &diag); err != nil {
		t.Fatalf("server show --diagnostics: %v\n%s", err, out)
	}
	t.Logf("server show --diagnostics:\n%s", out)
	// Root disk, config drive, two volumes; two NICs.
	if diag.State != "running" || diag.Driver != "libvirt" || diag.Hypervisor != "qemu" || diag.NumCPUs != 1 || len(diag.CPUs) != 1 ||
		diag.CPUs[0].Time <= 0 || diag.NumDisks != 4 || diag.NumNICs != 2 || diag.Memory.Maximum != 256 {
		t.Fatalf("diagnostics:\n%s", out)
	}
	if diag.NICs[0].MAC != nic.MAC || diag.NICs[0].Tx == 0 || diag.NICs[0].Rx == 0 || diag.Disks[0].ReadBytes == 0 {
		t.Fatalf("the booted guest's NIC and root disk moved nothing:\n%s", out)
	}
	if out, err := openstackErr(alice, "--os-compute-api-version", "2.48", "server", "show", "--diagnostics", vm.ID); err == nil {
		t.Fatalf("a member read diagnostics:\n%s", out)
	}
	if code, out := novaCall(t, "GET", base, tok, "96", ""); code != 200 || !strings.Contains(out, `"pinned_availability_zone":null`) {
		t.Fatalf("server show at 2.96: %d %s", code, out)
	}

	// Stopped, there is nothing to diagnose; started, the new config
	// drive lists the attached devices.
	openstack(t, alice, "server", "stop", "ndvm")
	if !eventually(2*time.Minute, func() bool { return showServer(t, alice, "ndvm").Status == "SHUTOFF" }) {
		t.Fatal("ndvm never stopped")
	}
	adminTok := token(t, n, "admin", creds["OS_PASSWORD"], "admin")
	if code, out := novaCall(t, "GET", base+"/diagnostics", adminTok, "48", ""); code != 409 {
		t.Fatalf("diagnostics of a stopped server: %d %s", code, out)
	}
	openstack(t, alice, "server", "start", "ndvm")
	cd, _ = lastDevices("DEVTAG-CD", 4*time.Minute, "nic-one", "vol-one", "vol-two", "nic-two")
	if len(cd) != 4 {
		t.Fatalf("config drive after the restart: %+v", cd)
	}

	// Forced down (2.11), the node's compute service is down; up again.
	svc := func() string {
		return openstack(t, admin, "--os-compute-api-version", "2.53", "compute", "service", "list", "--service", "nova-compute", "-f", "json", "--long")
	}
	openstack(t, admin, "--os-compute-api-version", "2.53", "compute", "service", "set", "--down", "novadev", "nova-compute")
	if out := svc(); !strings.Contains(out, `"State": "down"`) || !strings.Contains(out, `"Forced Down": true`) {
		t.Fatalf("after --down:\n%s", out)
	}
	openstack(t, admin, "--os-compute-api-version", "2.53", "compute", "service", "set", "--up", "novadev", "nova-compute")
	if out := svc(); !strings.Contains(out, `"State": "up"`) || !strings.Contains(out, `"Forced Down": false`) {
		t.Fatalf("after --up:\n%s", out)
	}
}

// TestNovaForcedDownEvacuate: on a real two-node cluster, a server whose
// node's compute service is up cannot be evacuated; forced down (2.11,
// the node still running), its node reads down and the server is
// evacuated at 2.95: it is the other node's, SHUTOFF, with no guest
// started there, and the forced-down node (alive) removes the guest it
// ran. Started, it boots on the new node. Forced up, the node is up.
func TestNovaForcedDownEvacuate(t *testing.T) {
	testenv.RequireRoot(t, "run QEMU guests")
	for _, c := range []string{"/usr/bin/openstack", "qemu-system-x86_64", "qemu-img", "genisoimage"} {
		testenv.RequireCommand(t, c)
	}
	img := testImage(t)
	nodes, creds := computeCluster(t, "ev", 2)
	n1 := nodes["ev1"]
	admin := osEnv(creds, n1.rackd)
	deleteServersAtCleanup(t, admin)
	openstack(t, admin, "image", "create", "--file", img, "--disk-format", "qcow2", "--container-format", "bare", "--public", "testimg")
	openstack(t, admin, "flavor", "create", "--vcpus", "1", "--ram", "256", "--disk", "1", "m1.tiny")
	openstack(t, admin, "--os-compute-api-version", "2.37", "server", "create", "--image", "testimg", "--flavor", "m1.tiny", "--nic", "none", "--wait", "evac")
	vm := showServer(t, admin, "evac")
	old := nodes[vm.Host]
	if old == nil || qemuIn(old.runDir, vm.ID) == 0 {
		t.Fatalf("evac on %q, no QEMU there", vm.Host)
	}
	tok := token(t, n1.rackd, "admin", creds["OS_PASSWORD"], "admin")
	action := n1.url() + "/compute/v2.1/servers/" + vm.ID + "/action"
	if code, out := novaCall(t, "POST", action, tok, "95", `{"evacuate": {}}`); code != 400 || !strings.Contains(out, "still in use") {
		t.Fatalf("evacuate with the host up: %d %s", code, out)
	}
	state := func(host string) string {
		return strings.TrimSpace(openstack(t, admin, "compute", "service", "list", "--service", "nova-compute", "--host", host, "-f", "value", "-c", "State"))
	}
	openstack(t, admin, "--os-compute-api-version", "2.11", "compute", "service", "set", "--down", old.name, "nova-compute")
	if st := state(old.name); st != "down" {
		t.Fatalf("%s forced down is %s", old.name, st)
	}
	if code, out := novaCall(t, "POST", action, tok, "95", `{"evacuate": {}}`); code != 200 {
		t.Fatalf("evacuate at 2.95 from a forced-down host: %d %s", code, out)
	}
	s := showServer(t, admin, vm.ID)
	next := nodes[s.Host]
	if s.Status != "SHUTOFF" || next == nil || next == old {
		t.Fatalf("after a 2.95 evacuation: %s on %s", s.Status, s.Host)
	}
	// The forced-down node runs on: its agent removes the guest that is
	// not its own any more; the new node starts none.
	if !eventually(2*time.Minute, func() bool { return qemuIn(old.runDir, vm.ID) == 0 }) {
		t.Fatalf("%s still runs the evacuated %s", old.name, vm.ID)
	}
	if pid := qemuIn(next.runDir, vm.ID); pid != 0 {
		t.Fatalf("a 2.95 evacuation started %s on %s (pid %d)", vm.ID, next.name, pid)
	}
	if s := showServer(t, admin, vm.ID); s.Status != "SHUTOFF" {
		t.Fatalf("evacuated server is %s", s.Status)
	}
	openstack(t, admin, "server", "start", vm.ID)
	if !eventually(3*time.Minute, func() bool { s = showServer(t, admin, vm.ID); return s.Status == "ACTIVE" }) {
		t.Fatalf("evacuated server started: %s", s.Status)
	}
	if s.Host != next.name || qemuIn(next.runDir, vm.ID) == 0 {
		t.Fatalf("started on %s, QEMU on %s: %d", s.Host, next.name, qemuIn(next.runDir, vm.ID))
	}
	waitConsole(t, admin, vm.ID, 3*time.Minute, "RACKSTACK-TEST-IMAGE: ready")
	openstack(t, admin, "--os-compute-api-version", "2.11", "compute", "service", "set", "--up", old.name, "nova-compute")
	if st := state(old.name); st != "up" {
		t.Fatalf("%s forced up is %s", old.name, st)
	}
}
