//go:build integration

package integration

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/node/configdrive"
	"github.com/rackstack/rackstack/provision/agentapi"
)

// TestRamdiskAgent boots the real ramdisk (make ramdisk) in a QEMU guest
// under TCG: the real rack-agent posts the inventory of the guest, cleans
// its virtio disk (which holds an earlier image), deploys the test image
// with a config drive to it, and powers off. The test checks the inventory against the QEMU command line, the
// disk's bytes and its config-2 partition, then boots the deployed disk and
// sees the test image read its config drive. The guest's network is QEMU
// user networking with restrict=on: its only way out is one guestfwd to
// this test's server on loopback.
func TestRamdiskAgent(t *testing.T) {
	qemu := testenv.RequireCommand(t, "qemu-system-x86_64")
	qemuImg := testenv.RequireCommand(t, "qemu-img")
	testenv.RequireCommand(t, "genisoimage")
	testenv.RequireCommand(t, "busybox") // the guestfwd's pipe to loopback
	image := testImage(t)
	ramdisk := buildRamdisk(t)

	dir := t.TempDir()
	raw := filepath.Join(dir, "image.raw")
	if out, err := exec.Command(qemuImg, "convert", "-O", "raw", image, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, out)
	}
	imageBytes, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(imageBytes)
	drivePath := filepath.Join(dir, "config.iso")
	if err := configdrive.Build(context.Background(), drivePath, configdrive.Server{
		UUID: "8d8a4a4c-0000-4000-8000-000000000001", Name: "bm-1", Hostname: "bm-one",
	}); err != nil {
		t.Fatal(err)
	}
	drive, err := os.ReadFile(drivePath)
	if err != nil {
		t.Fatal(err)
	}
	const diskSize = 128 << 20
	disk := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, diskSize); err != nil {
		t.Fatal(err)
	}
	// A previous tenant's disk: a partition table and a filesystem, which
	// the clean before the deploy erases.
	if err := os.WriteFile(disk+".old", imageBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("dd", "if="+disk+".old", "of="+disk, "conv=notrunc", "status=none").CombinedOutput(); err != nil {
		t.Fatalf("dd: %v: %s", err, out)
	}

	const (
		token   = "boot-token-1"
		mac     = "52:54:00:a9:00:01"
		sysUUID = "6b1f3c2e-55aa-4c1d-9e0f-0123456789ab"
	)
	srv := &fakeConductor{
		token: token,
		deploy: agentapi.DeployArgs{
			RootDisk: "/dev/vda", ImageSize: int64(len(imageBytes)), ImageSHA256: hex.EncodeToString(sum[:]), ConfigDrive: true,
		},
		image: raw, drive: drive,
		inventory: make(chan agentapi.Inventory, 1),
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	console := filepath.Join(dir, "console.log")
	started := time.Now()
	cmd := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "256",
		"-nographic", "-no-reboot", "-nodefaults", "-serial", "file:"+console,
		"-kernel", filepath.Join(ramdisk, "vmlinuz"), "-initrd", filepath.Join(ramdisk, "initramfs.zst"),
		"-append", fmt.Sprintf("console=ttyS0 %s=http://10.0.2.100:8080 %s=%s %s=%s", agentapi.ArgURL, agentapi.ArgToken, token, agentapi.ArgMAC, mac),
		"-drive", "file="+disk+",format=raw,if=none,id=d0,cache=unsafe",
		"-device", "virtio-blk-pci,drive=d0,serial=RSDISK0001",
		"-netdev", "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:8080-cmd:busybox nc 127.0.0.1 "+fmt.Sprint(l.Addr().(*net.TCPAddr).Port),
		"-device", "virtio-net-pci,netdev=n0,mac="+mac,
		"-smbios", "type=1,manufacturer=Rackstack Test,product=BM-1,serial=SER-0042", "-uuid", sysUUID)
	out, _ := os.Create(filepath.Join(dir, "qemu.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	recordProcess(t, cmd.Process.Pid, false)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	dump := func() {
		b, _ := os.ReadFile(console)
		q, _ := os.ReadFile(filepath.Join(dir, "qemu.log"))
		t.Logf("console:\n%s\nqemu:\n%s", b, q)
	}

	var inv agentapi.Inventory
	select {
	case inv = <-srv.inventory:
		t.Logf("boot to inventory: %.1f s under TCG", time.Since(started).Seconds())
	case err := <-exited:
		dump()
		t.Fatalf("qemu exited before the inventory came: %v", err)
	case <-ctx.Done():
		dump()
		t.Fatal("no inventory within the deadline")
	}
	checkInventory(t, inv, mac, sysUUID, diskSize)

	select {
	case err := <-exited:
		if err != nil {
			dump()
			t.Fatalf("qemu: %v", err)
		}
	case <-ctx.Done():
		dump()
		t.Fatal("the guest did not power off")
	}
	t.Logf("boot to powered off after deploy: %.1f s", time.Since(started).Seconds())
	res := srv.results()
	if len(res) != 3 || !res[0].OK || res[0].Op != agentapi.OpClean || !res[1].OK || res[1].Op != agentapi.OpDeploy || res[2].Op != agentapi.OpPowerOff {
		dump()
		t.Fatalf("results %+v, want a successful clean, deploy, then poweroff", res)
	}
	t.Logf("clean result: %s", res[0].Message)
	t.Logf("deploy result: %s", res[1].Message)
	// The kernel re-read the tables the agent changed: nothing held the disk.
	if res[0].Message != "erased metadata on /dev/vda (1 partitions)" {
		t.Errorf("clean message %q, want one partition erased and the table re-read", res[0].Message)
	}
	if want := fmt.Sprintf("wrote %d MiB to /dev/vda, sha256 ok, config drive on /dev/vda2", len(imageBytes)>>20); res[1].Message != want {
		t.Errorf("deploy message %q, want %q", res[1].Message, want)
	}
	if n := srv.deploys(); n != 1 {
		t.Errorf("the deploy command ran %d times, want once", n)
	}

	// The console tells an operator what happened, step by step.
	con, _ := os.ReadFile(console)
	for _, want := range []string{"rack-agent: eth0 has 10.0.2.15", "rack-agent: starting rack-agent", "msg=\"inventory posted\" node=node-1", "msg=\"command done\" command=deploy-1", "msg=\"result posted\" command=deploy-1"} {
		if !strings.Contains(string(con), want) {
			t.Errorf("console lacks %q", want)
		}
	}

	checkDisk(t, disk, imageBytes, drive, diskSize)

	// The deployed disk boots, and the test image finds its hostname on the
	// config-2 partition.
	bootCtx, bootCancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer bootCancel()
	boot := exec.CommandContext(bootCtx, qemu, "-accel", "tcg", "-cpu", "max", "-m", "256",
		"-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-drive", "file="+disk+",format=raw,if=virtio", "-nic", "none")
	stdout, _ := boot.StdoutPipe()
	if err := boot.Start(); err != nil {
		t.Fatal(err)
	}
	recordProcess(t, boot.Process.Pid, false)
	defer func() { boot.Process.Kill(); boot.Wait() }()
	sc := bufio.NewScanner(stdout)
	var seen []string
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "RACKSTACK-TEST-IMAGE:") {
			seen = append(seen, line)
		}
		if strings.Contains(line, "RACKSTACK-TEST-IMAGE: hostname=bm-one") {
			return
		}
		if strings.Contains(line, "RACKSTACK-TEST-IMAGE: no config drive") || strings.Contains(line, "RACKSTACK-TEST-IMAGE: ready") {
			break
		}
	}
	t.Fatalf("the deployed disk did not boot with its config drive; test image said: %q", seen)
}

func checkInventory(t *testing.T, inv agentapi.Inventory, mac, sysUUID string, diskSize int64) {
	t.Helper()
	b, _ := json.MarshalIndent(inv, "", "  ")
	if inv.CPU.Count != 2 || inv.CPU.Architecture != "x86_64" || len(inv.CPU.Flags) == 0 {
		t.Errorf("cpu %+v, want 2 x86_64 CPUs with flags", inv.CPU)
	}
	if inv.Memory.PhysicalMB != 256 || inv.Memory.Total <= 128<<20 || inv.Memory.Total > 256<<20 {
		t.Errorf("memory %+v, want 256 MiB installed and between 128 and 256 MiB usable", inv.Memory)
	}
	if len(inv.Disks) != 1 || inv.Disks[0].Name != "/dev/vda" || inv.Disks[0].Size != diskSize || inv.Disks[0].Serial != "RSDISK0001" {
		t.Errorf("disks %+v, want /dev/vda of %d bytes with serial RSDISK0001", inv.Disks, diskSize)
	}
	if len(inv.Interfaces) != 1 || inv.Interfaces[0].MACAddress != mac || inv.Interfaces[0].Driver != "virtio_net" ||
		inv.Interfaces[0].IPv4Address != "10.0.2.15" || !inv.Interfaces[0].HasCarrier {
		t.Errorf("interfaces %+v, want one virtio_net NIC %s at 10.0.2.15 with carrier", inv.Interfaces, mac)
	}
	if inv.Boot.PXEInterface != mac || inv.Boot.CurrentBootMode != "bios" {
		t.Errorf("boot %+v, want bios from %s", inv.Boot, mac)
	}
	if inv.SystemVendor.Manufacturer != "Rackstack Test" || inv.SystemVendor.ProductName != "BM-1" || inv.SystemVendor.SerialNumber != "SER-0042" || inv.SystemVendor.UUID != sysUUID {
		t.Errorf("system vendor %+v, want the -smbios values", inv.SystemVendor)
	}
	if t.Failed() {
		t.Logf("inventory: %s", b)
	}
}

// checkDisk reads the guest's disk: the image's bytes at its start, and a
// second MBR partition at the end holding the config drive.
func checkDisk(t *testing.T, disk string, image, drive []byte, diskSize int64) {
	t.Helper()
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, len(image))
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	// The MBR now has the second entry the agent added; everything else is
	// the image's.
	want := append([]byte(nil), image...)
	copy(want[446+16:446+32], got[446+16:446+32])
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Error("the disk does not start with the image")
	}
	e := got[446+16 : 446+32]
	start := int64(binary.LittleEndian.Uint32(e[8:])) * 512
	size := int64(binary.LittleEndian.Uint32(e[12:])) * 512
	if e[4] == 0 || start+size != diskSize || start < int64(len(image)) || size < int64(len(drive)) || start%(1<<20) != 0 {
		t.Fatalf("config drive entry type %#x start %d size %d; want a MiB-aligned partition after the image ending at %d", e[4], start, size, diskSize)
	}
	cd := make([]byte, len(drive))
	if _, err := f.ReadAt(cd, start); err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(cd) != sha256.Sum256(drive) {
		t.Error("partition 2 does not hold the config drive")
	}
	if sfdisk, err := exec.LookPath("sfdisk"); err == nil {
		out, err := exec.Command(sfdisk, "--json", disk).Output()
		if err != nil {
			t.Fatalf("sfdisk --json: %v", err)
		}
		var table struct {
			PartitionTable struct {
				Partitions []struct {
					Start, Size int64
					Type        string
				}
			}
		}
		if err := json.Unmarshal(out, &table); err != nil {
			t.Fatal(err)
		}
		p := table.PartitionTable.Partitions
		if len(p) != 2 || p[1].Start*512 != start || p[1].Size*512 != size || p[1].Type != "83" {
			t.Errorf("sfdisk sees %s", out)
		}
	}
}

// fakeConductor answers the agent the way the conductor does for one
// deploy: deploy, then poweroff once the deploy's result is in.
type fakeConductor struct {
	token     string
	deploy    agentapi.DeployArgs
	image     string
	drive     []byte
	inventory chan agentapi.Inventory

	mu       sync.Mutex
	res      []agentapi.Result
	deployed int
}

func (s *fakeConductor) results() []agentapi.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]agentapi.Result(nil), s.res...)
}

func (s *fakeConductor) deploys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deployed
}

func (s *fakeConductor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	switch r.URL.Path {
	case agentapi.PathInventory:
		var inv agentapi.Inventory
		if err := json.NewDecoder(r.Body).Decode(&inv); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case s.inventory <- inv:
		default:
		}
		json.NewEncoder(w).Encode(agentapi.InventoryReply{Node: "node-1"})
	case agentapi.PathHeartbeat:
		s.mu.Lock()
		// Each command until its result is in, and after it: the agent
		// runs each id once.
		script := []agentapi.Command{
			{ID: "clean-1", Op: agentapi.OpClean, Clean: &agentapi.CleanArgs{}},
			{ID: "deploy-1", Op: agentapi.OpDeploy, Deploy: &s.deploy},
			{ID: "poweroff-1", Op: agentapi.OpPowerOff},
		}
		cmd := script[min(len(s.res), len(script)-1)]
		s.mu.Unlock()
		json.NewEncoder(w).Encode(agentapi.HeartbeatReply{Command: cmd, Interval: agentapi.Seconds(time.Second)})
	case agentapi.PathResult:
		var res agentapi.Result
		json.NewDecoder(r.Body).Decode(&res)
		s.mu.Lock()
		s.res = append(s.res, res)
		if res.Op == agentapi.OpDeploy {
			s.deployed++
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case agentapi.PathImage:
		f, err := os.Open(s.image)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "image.raw", time.Time{}, f)
	case agentapi.PathConfigDrive:
		w.Write(s.drive)
	default:
		http.NotFound(w, r)
	}
}
