package dataplane

import (
	"errors"
	"fmt"
	"sync"
)

// portServer is a server bound to one port's device: DHCPv4 or DHCPv6.
type portServer interface {
	// update takes the port's current state (its MAC and lease).
	update(p Port)
	stop()
}

// portServers runs one server on the device of every plugged port that
// wants one, and stops the others. The DHCPv4 and DHCPv6 servers are
// each a set of these.
type portServers[S portServer] struct {
	kind  string                                         // named in errors
	wants func(p Port) bool                              // the port gets a server
	start func(dev string, p Port, dv device) (S, error) // bind and serve

	mu      sync.Mutex
	servers map[string]S // device → server
}

func (s *portServers[S]) sync(ports []Port, devs map[string]device) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]Port{}
	for _, p := range ports {
		if _, ok := devs[p.Device]; ok && p.TrunkVID == 0 && s.wants(p) { // a subport gets none (trunk.go)
			want[p.Device] = p
		}
	}
	for dev, srv := range s.servers {
		if _, ok := want[dev]; !ok {
			srv.stop()
			delete(s.servers, dev)
		}
	}
	var errs []error
	for dev, p := range want {
		if srv, ok := s.servers[dev]; ok {
			srv.update(p)
			continue
		}
		srv, err := s.start(dev, p, devs[dev])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s on %s: %w", s.kind, dev, err))
			continue
		}
		s.servers[dev] = srv
	}
	return errors.Join(errs...)
}

func (s *portServers[S]) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for dev, srv := range s.servers {
		srv.stop()
		delete(s.servers, dev)
	}
}
