package main

import (
	"bytes"
	"strings"
	"testing"
)

// The halting guest's disk is a boot sector SeaBIOS boots (the 0x55AA
// signature) whose message is where its code points SI.
func TestHaltImageIsABootSector(t *testing.T) {
	img := haltImage()
	if len(img) != 1<<20 || img[510] != 0x55 || img[511] != 0xAA {
		t.Fatalf("size %d, signature % x", len(img), img[510:512])
	}
	// mov si, imm16 at offset 5 names the message's address in memory,
	// where the BIOS loads the sector: 0x7C00.
	if img[5] != 0xBE {
		t.Fatalf("no mov si at offset 5: % x", img[:8])
	}
	at := int(img[6]) | int(img[7])<<8 - 0x7C00
	if at < 0 || at >= 510 || !bytes.HasPrefix(img[at:], []byte(haltMarker+"\r\n\x00")) {
		t.Fatalf("SI points at offset %d: %q", at, img[max(at, 0):max(at, 0)+24])
	}
}

// A scrape's rackstack_instance_* series are counted by server.
func TestCountInstances(t *testing.T) {
	text := `# HELP rackstack_instance_cpu_seconds_total CPU
# TYPE rackstack_instance_cpu_seconds_total counter
rackstack_instance_cpu_seconds_total{project_id="p",server_id="s1"} 1.5
rackstack_instance_cpu_seconds_total{project_id="p",server_id="s2"} 2
rackstack_instance_network_receive_bytes_total{port_id="x",project_id="p",server_id="s2"} 10
rackstack_raft_term 3
`
	got, err := countInstances(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if got != (instanceScrape{series: 4, instanceSeries: 3, servers: 2}) {
		t.Fatalf("%+v", got)
	}
}
