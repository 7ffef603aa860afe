package inventory

import (
	"reflect"
	"testing"
)

func TestReadFromFixture(t *testing.T) {
	inv, err := ReadFrom("testdata/machine")
	if err != nil {
		t.Fatal(err)
	}
	want := Inventory{
		Hostname: "node7", Kernel: "6.18.0", CPUModel: "Test CPU", CPUs: 2, CPUFlags: []string{"avx2", "vmx"}, MemoryBytes: 2048 * 1024,
		Disks: []Disk{{Name: "vda", SizeBytes: 2048 * 512}},
		NICs:  []NIC{{Name: "eth0", MAC: "52:54:00:12:34:56", MTU: 1500, Up: true}},
		// Two user processes of three utmp records (one dead).
		BootTime: 1796630000, LoadAverage: []float64{0.52, 0.34, 0.10}, Users: 2,
	}
	if !reflect.DeepEqual(inv, want) {
		t.Fatalf("got %+v\nwant %+v", inv, want)
	}
}

func TestReadMissingRoot(t *testing.T) {
	if _, err := ReadFrom(t.TempDir()); err == nil {
		t.Fatal("a tree without /proc/cpuinfo must be an error")
	}
}

func TestReadThisMachine(t *testing.T) {
	inv, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	if inv.CPUs < 1 || inv.MemoryBytes == 0 || len(inv.NICs) == 0 || inv.BootTime == 0 || len(inv.LoadAverage) != 3 {
		t.Fatalf("implausible inventory of this machine: %+v", inv)
	}
}
