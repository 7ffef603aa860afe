package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// barePXEServer is the bare PXE floor's whole boot path besides the site's
// DHCP server: a static iPXE script and the ramdisk's files served by
// http.FileServer on the bridge address, and a note of the first request
// each machine's agent makes. It answers the agent 401, which stops it:
// there is nothing to enrol with.
type barePXEServer struct {
	addr  string // IP:port on the bridge
	srv   *http.Server
	mu    sync.Mutex
	first map[string]time.Time // MAC (aa-bb-…) → the agent's first request
	seen  chan struct{}        // signalled on every new first request
}

// barePXEScript boots the ramdisk the way rackd's discovery script does,
// with the agent's URL pointing back here under the machine's MAC
// (iPXE fills ${net0/mac:hexhyp} in), so each request names its machine.
func barePXEScript(base string) string {
	return "#!ipxe\n" +
		"kernel " + base + "/ramdisk/vmlinuz initrd=initramfs.zst console=ttyS0 " +
		"rackstack.url=" + base + "/m/${net0/mac:hexhyp} rackstack.token=bare-pxe rackstack.mac=${net0/mac}\n" +
		"initrd " + base + "/ramdisk/initramfs.zst\n" +
		"boot\n"
}

// agentMAC reads the MAC out of an agent request's path, /m/<mac>/agent/….
func agentMAC(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/m/")
	if !ok {
		return "", false
	}
	mac, tail, ok := strings.Cut(rest, "/")
	if !ok || !strings.HasPrefix(tail, "agent/") || mac == "" {
		return "", false
	}
	return strings.ToLower(mac), true
}

func startBarePXE(ip, ramdisk string) (*barePXEServer, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, fmt.Errorf("start bare PXE server: %w", err)
	}
	s := &barePXEServer{addr: ln.Addr().String(), first: map[string]time.Time{}, seen: make(chan struct{}, 1)}
	mux := http.NewServeMux()
	script := barePXEScript("http://" + s.addr)
	mux.HandleFunc("GET /boot.ipxe", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, script)
	})
	mux.Handle("GET /ramdisk/", http.StripPrefix("/ramdisk/", http.FileServer(http.Dir(ramdisk))))
	mux.HandleFunc("/m/", func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		if mac, ok := agentMAC(r.URL.Path); ok {
			s.mu.Lock()
			if _, dup := s.first[mac]; !dup {
				s.first[mac] = now
				select {
				case s.seen <- struct{}{}:
				default:
				}
			}
			s.mu.Unlock()
		}
		http.Error(w, "bare PXE: nothing to enrol with", http.StatusUnauthorized)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *barePXEServer) scriptURL() string { return "http://" + s.addr + "/boot.ipxe" }

// waitAgent returns when the agent of the machine with mac first called.
func (s *barePXEServer) waitAgent(ctx context.Context, mac string, d time.Duration) (time.Time, error) {
	key := strings.ReplaceAll(strings.ToLower(mac), ":", "-")
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		at, ok := s.first[key]
		s.mu.Unlock()
		if ok {
			return at, nil
		}
		select {
		case <-s.seen:
		case <-time.After(time.Second): // several waiters share seen
		case <-timeout.C:
			return time.Time{}, fmt.Errorf("no request from the agent of %s within %s", mac, d)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

func (s *barePXEServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.srv.Close()
	}
}
