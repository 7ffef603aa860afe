package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/hypervisor/qmp"
)

// formatQEMU answers QMP as QEMU does for a blockdev-create job whose
// first fails runs fail with failure (QEMU's message), then succeed. It
// counts the jobs created.
func formatQEMU(t *testing.T, fails int, failure string) (*qmp.Client, *int) {
	t.Helper()
	server, client := net.Pipe()
	created := new(int)
	go func() {
		defer server.Close()
		send := func(format string, a ...any) { fmt.Fprintf(server, format+"\r\n", a...) }
		send(`{"QMP": {"version": {"qemu": {"major": 9, "minor": 2, "micro": 0}}, "capabilities": []}}`)
		sc := bufio.NewScanner(server)
		for sc.Scan() {
			var req struct {
				Execute string `json:"execute"`
				ID      string `json:"id"`
			}
			if json.Unmarshal(sc.Bytes(), &req) != nil {
				return
			}
			switch req.Execute {
			case "blockdev-create":
				*created++
				send(`{"return": {}, "id": %q}`, req.ID)
			case "query-jobs":
				jobErr := ""
				if *created <= fails {
					jobErr = fmt.Sprintf(`, "error": %q`, failure)
				}
				send(`{"return": [{"id": "fmt-d1", "type": "create", "status": "concluded"%s}], "id": %q}`, jobErr, req.ID)
			default:
				send(`{"return": {}, "id": %q}`, req.ID)
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := qmp.NewClient(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, created
}

// QEMU's PBKDF2 timing can fail on a busy host without writing anything:
// the format is run again, and any other failure is not.
func TestFormatLUKSRetriesAStalledCPUClock(t *testing.T) {
	d := hypervisor.HotDisk{ID: "d1", Encryption: &hypervisor.DiskEncryption{CipherAlg: "aes-256"}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, created := formatQEMU(t, 2, errCPUClock)
	if err := formatLUKS(ctx, c, d, "nbd-d1"); err != nil {
		t.Fatalf("format after two stalled clocks: %v", err)
	}
	if *created != 3 {
		t.Fatalf("%d jobs created, want 3", *created)
	}

	c, created = formatQEMU(t, luksTries, errCPUClock)
	if err := formatLUKS(ctx, c, d, "nbd-d1"); err == nil || !strings.Contains(err.Error(), errCPUClock) {
		t.Fatalf("format with the clock always stalled: err = %v", err)
	}
	if *created != luksTries {
		t.Fatalf("%d jobs created, want %d", *created, luksTries)
	}

	c, created = formatQEMU(t, 1, "Could not write the header")
	if err := formatLUKS(ctx, c, d, "nbd-d1"); err == nil || *created != 1 {
		t.Fatalf("another failure: err = %v after %d jobs, want it at once", err, *created)
	}
}
