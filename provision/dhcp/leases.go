package dhcp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// leaseFile is the name of the full-mode lease file in Config.LeaseDir.
const leaseFile = "dhcp-leases.json"

var errExhausted = errors.New("address range exhausted")

// binding is an address's state. A binding outlives its expiry: the
// address stays with its MAC until another client needs it, so a server
// that reboots (or is released) gets its old address back.
type binding struct {
	IP      netip.Addr `json:"ip"`
	MAC     string     `json:"mac,omitempty"` // empty: declined, in use by a host we do not know
	Expires time.Time  `json:"expires"`
	// Offered: held for an offer, not yet acknowledged; never written.
	Offered bool `json:"-"`
}

// leases are the full-mode address bindings, written to a file on every
// change a client was told of, so a restart never gives an acknowledged
// address to a second client.
type leases struct {
	path string
	rng  Range
	log  *slog.Logger

	mu   sync.Mutex
	byIP map[netip.Addr]*binding
}

type leaseDoc struct {
	Leases []*binding `json:"leases"`
}

func openLeases(path string, rng Range, log *slog.Logger) (*leases, error) {
	l := &leases{path: path, rng: rng, log: log, byIP: map[netip.Addr]*binding{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read leases: %w", err)
	}
	var doc leaseDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("read leases %s: %w", path, err)
	}
	for _, b := range doc.Leases {
		if b == nil || !rng.Contains(b.IP) {
			if b != nil {
				log.Warn("dhcp: dropping a lease outside the range", "ip", b.IP, "mac", b.MAC, "range", rng)
			}
			continue
		}
		l.byIP[b.IP] = b
	}
	return l, nil
}

// held reports whether b keeps its address from other clients at now.
func (b *binding) held(now time.Time) bool { return b != nil && now.Before(b.Expires) }

// mine is the binding of mac, if any.
func (l *leases) mine(mac string) *binding {
	for _, b := range l.byIP {
		if b.MAC == mac {
			return b
		}
	}
	return nil
}

// offer picks the address to offer mac: its own, else the one it asks for
// when free, else a never-used one, else the one longest expired.
func (l *leases) offer(mac string, requested netip.Addr, now time.Time) (netip.Addr, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.mine(mac); b != nil {
		if !b.held(now) {
			b.Expires = now.Add(offerHold)
		}
		return b.IP, nil
	}
	ip := netip.Addr{}
	if l.rng.Contains(requested) && !l.byIP[requested].held(now) {
		ip = requested
	}
	var oldest *binding
	for a := l.rng.Start; !ip.IsValid() && a.IsValid() && a.Compare(l.rng.End) <= 0; a = a.Next() {
		b := l.byIP[a]
		if b == nil {
			ip = a
		} else if !b.held(now) && (oldest == nil || b.Expires.Before(oldest.Expires)) {
			oldest = b
		}
	}
	if !ip.IsValid() {
		if oldest == nil {
			return netip.Addr{}, errExhausted
		}
		ip = oldest.IP
	}
	l.byIP[ip] = &binding{IP: ip, MAC: mac, Expires: now.Add(offerHold), Offered: true}
	return ip, nil
}

// bind acknowledges ip to mac for lease and records it; false when ip is
// not mac's to have (outside the range, or held by another client).
func (l *leases) bind(mac string, ip netip.Addr, now time.Time, lease time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.rng.Contains(ip) {
		return false, nil
	}
	if b := l.byIP[ip]; b != nil && b.MAC != mac && b.held(now) {
		return false, nil
	}
	if old := l.mine(mac); old != nil && old.IP != ip {
		delete(l.byIP, old.IP)
	}
	l.byIP[ip] = &binding{IP: ip, MAC: mac, Expires: now.Add(lease)}
	return true, l.save()
}

// withdraw frees an address offered to mac that it did not take.
func (l *leases) withdraw(mac string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.mine(mac); b != nil && b.Offered {
		delete(l.byIP, b.IP)
	}
}

// release ends mac's lease of ip now; the address stays its own until
// another client needs it.
func (l *leases) release(mac string, ip netip.Addr, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.byIP[ip]
	if b == nil || b.MAC != mac || !b.held(now) {
		return nil
	}
	b.Expires, b.Offered = now, false
	return l.save()
}

// decline marks ip, which mac found in use by another host, as unusable
// for hold, and forgets it as mac's.
func (l *leases) decline(mac string, ip netip.Addr, now time.Time, hold time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.byIP[ip]
	if b == nil || b.MAC != mac {
		return nil // not an address we gave it
	}
	l.byIP[ip] = &binding{IP: ip, Expires: now.Add(hold)}
	return l.save()
}

// save writes the acknowledged bindings and declines, whole or not at all.
func (l *leases) save() error {
	doc := leaseDoc{Leases: []*binding{}}
	for a := l.rng.Start; a.IsValid() && a.Compare(l.rng.End) <= 0; a = a.Next() {
		if b := l.byIP[a]; b != nil && !b.Offered {
			doc.Leases = append(doc.Leases, b)
		}
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode leases: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return fmt.Errorf("write leases: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(l.path), leaseFile+".*")
	if err != nil {
		return fmt.Errorf("write leases: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write leases: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write leases: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write leases: %w", err)
	}
	if err := os.Rename(tmp.Name(), l.path); err != nil {
		return fmt.Errorf("write leases: %w", err)
	}
	return nil
}
