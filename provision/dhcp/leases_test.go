package dhcp

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func testLeases(t *testing.T, path, start, end string) *leases {
	t.Helper()
	l, err := openLeases(path, Range{Start: netip.MustParseAddr(start), End: netip.MustParseAddr(end)}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLeasesStablePerMACAndNeverShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), leaseFile)
	l := testLeases(t, path, "10.0.0.10", "10.0.0.12")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	got := map[string]netip.Addr{}
	for _, mac := range []string{"a", "b", "c"} {
		ip, err := l.offer(mac, netip.Addr{}, now)
		if err != nil {
			t.Fatal(err)
		}
		for other, oip := range got {
			if oip == ip {
				t.Fatalf("%s offered %s, already offered to %s", mac, ip, other)
			}
		}
		got[mac] = ip
		if ok, err := l.bind(mac, ip, now, time.Hour); !ok || err != nil {
			t.Fatalf("bind %s %s: %v %v", mac, ip, ok, err)
		}
	}
	if _, err := l.offer("d", netip.Addr{}, now); err != errExhausted {
		t.Fatalf("fourth client: %v, want exhausted", err)
	}
	if ok, _ := l.bind("d", got["a"], now, time.Hour); ok {
		t.Fatalf("d was acked a's address")
	}
	if ok, _ := l.bind("d", netip.MustParseAddr("10.0.0.99"), now, time.Hour); ok {
		t.Fatalf("d was acked an address outside the range")
	}

	// Reloaded from the file, the same leases hold.
	l2 := testLeases(t, path, "10.0.0.10", "10.0.0.12")
	for mac, ip := range got {
		if again, err := l2.offer(mac, netip.Addr{}, now.Add(time.Minute)); again != ip || err != nil {
			t.Errorf("after reload %s offered %s (%v), had %s", mac, again, err, ip)
		}
	}
	if _, err := l2.offer("d", netip.Addr{}, now.Add(time.Minute)); err != errExhausted {
		t.Fatalf("after reload a fourth client got %v, want exhausted", err)
	}

	// Expired, an address goes to a new client only when no other is
	// left, the longest expired first; its old owner keeps it till then.
	later := now.Add(2 * time.Hour)
	if ok, _ := l2.bind("b", got["b"], later, time.Hour); !ok {
		t.Fatal("renew b")
	}
	if ip, _ := l2.offer("a", netip.Addr{}, later); ip != got["a"] {
		t.Errorf("a after expiry offered %s, had %s", ip, got["a"])
	}
	ip, err := l2.offer("d", netip.Addr{}, later)
	if err != nil || ip != got["c"] {
		t.Errorf("d offered %s (%v), want c's expired %s (a's is held by its offer)", ip, err, got["c"])
	}
}

func TestLeasesRequestedAddressAndWithdraw(t *testing.T) {
	l := testLeases(t, filepath.Join(t.TempDir(), leaseFile), "10.0.0.10", "10.0.0.20")
	now := time.Now()
	want := netip.MustParseAddr("10.0.0.15")
	if ip, _ := l.offer("a", want, now); ip != want {
		t.Fatalf("offered %s, asked for free %s", ip, want)
	}
	if ip, _ := l.offer("b", want, now); ip == want {
		t.Fatalf("b offered %s, which is offered to a", ip)
	}
	l.withdraw("a", now) // a took another server's offer
	if ip, _ := l.offer("c", want, now); ip != want {
		t.Fatalf("c offered %s; withdrawn %s should be free", ip, want)
	}
}

func TestLeasesFileIsWholeAndSkipsOffers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, leaseFile)
	l := testLeases(t, path, "10.0.0.10", "10.0.0.20")
	now := time.Now()
	l.offer("only-offered", netip.Addr{}, now)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("an offer was written: %v", err)
	}
	ip, _ := l.offer("a", netip.Addr{}, now)
	l.bind("a", ip, now, time.Hour)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("lease dir holds %d files, want only %s (no temp files left)", len(entries), leaseFile)
	}
	l2 := testLeases(t, path, "10.0.0.10", "10.0.0.20")
	if len(l2.byIP) != 1 || l2.byIP[ip] == nil || l2.byIP[ip].MAC != "a" {
		t.Errorf("reloaded %v, want only a's lease of %s", l2.byIP, ip)
	}
	// A lease outside a narrowed range is dropped on load.
	l3 := testLeases(t, path, "10.0.0.30", "10.0.0.40")
	if len(l3.byIP) != 0 {
		t.Errorf("lease outside the range kept: %v", l3.byIP)
	}
}
