package network

import (
	"context"
	"net/http"
	"slices"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Availability zones (availability_zone, network_availability_zone,
// router_availability_zone). A zone is what Nova calls one: a node is in
// the zone of a host aggregate it is in, else in the default zone
// (computestate.NodeAZ), so Neutron and Nova name the same zones and a
// server's port and its network agree on where they are. A zone is
// available while one of its nodes heartbeats.
//
// Every node's dataplane switches every network, answers DHCP for the
// ports it hosts and routes for every router (routers are distributed),
// so a network's or router's availability_zones are all the zones; its
// availability_zone_hints are what was asked, checked against the zones
// there are when asked, as Neutron checks them (404
// AvailabilityZoneNotFound), and not changeable afterwards.

// defaultAZ is the zone of a node no aggregate puts in another, Nova's
// default_availability_zone.
const defaultAZ = "nova"

// zone is one availability zone and whether any of its nodes is up.
type zone struct {
	name string
	up   bool
}

// zones are the cloud's availability zones, sorted by name. With no
// Agents (no cluster to ask) there is the default zone alone.
func (s *Service) zones(ctx context.Context, tx *memdb.Txn) ([]zone, error) {
	if s.cfg.Agents == nil {
		return []zone{{name: defaultAZ, up: true}}, nil
	}
	hosts, err := s.cfg.Agents.AgentHosts(ctx)
	if err != nil {
		return nil, err
	}
	up := map[string]bool{}
	for _, h := range hosts {
		az := computestate.NodeAZ(tx, h.Name, defaultAZ)
		up[az] = up[az] || h.Up
	}
	out := make([]zone, 0, len(up))
	for name, u := range up {
		out = append(out, zone{name: name, up: u})
	}
	slices.SortFunc(out, func(a, b zone) int {
		if a.name < b.name {
			return -1
		}
		if a.name > b.name {
			return 1
		}
		return 0
	})
	return out, nil
}

// zoneNames are the names of the zones, for a view's availability_zones:
// [] where they cannot be read, which a view has no way to report.
func (s *Service) zoneNames(tx *memdb.Txn) []string {
	zs, err := s.zones(context.Background(), tx)
	if err != nil {
		s.log.Warn("availability zones unknown", "err", err)
		return []string{}
	}
	out := make([]string, 0, len(zs))
	for _, z := range zs {
		out = append(out, z.name)
	}
	return out
}

// nodeZone is the zone of node, as its agents show it.
func nodeZone(tx *memdb.Txn, node string) string { return computestate.NodeAZ(tx, node, defaultAZ) }

// readAZHints reads availability_zone_hints: each a zone there is (404
// AvailabilityZoneNotFound naming the first that is not), each once, in
// the order given.
func (s *Service) readAZHints(tx *memdb.Txn, rd *api.Input) []string {
	hints := rd.Strs("availability_zone_hints")
	if rd.Err != nil || len(hints) == 0 {
		return nil
	}
	zs, err := s.zones(context.Background(), tx)
	if err != nil {
		rd.Fail(err)
		return nil
	}
	var out []string
	for _, h := range hints {
		if len(h) > 255 {
			rd.Fail(badInput("availability_zone_hints", "'%s' exceeds maximum length of 255", h))
			return nil
		}
		if !slices.ContainsFunc(zs, func(z zone) bool { return z.name == h }) {
			rd.Fail(store.Fault(store.KindNotFound, "AvailabilityZoneNotFound", "AvailabilityZone %s could not be found.", h))
			return nil
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// hintList is a row's availability_zone_hints as shown: never null.
func hintList(h []string) []string {
	if h == nil {
		return []string{}
	}
	return h
}

// listZones answers GET /v2.0/availability_zones: each zone once per
// resource it serves (network and router), filtered by name, resource
// and state, with fields= as any Neutron list.
func (s *Service) listZones(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	zs, err := s.zones(r.Context(), tx)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	out := []map[string]any{}
	for _, z := range zs {
		state := "unavailable"
		if z.up {
			state = "available"
		}
		for _, res := range []string{"network", "router"} {
			v := map[string]any{"name": z.name, "resource": res, "state": state}
			keep := true
			for _, f := range []string{"name", "resource", "state"} {
				if want, ok := q[f]; ok && !api.MatchValue(v[f], want) {
					keep = false
				}
			}
			if !keep {
				continue
			}
			if fields := q["fields"]; len(fields) > 0 {
				for k := range v {
					if !slices.Contains(fields, k) {
						delete(v, k)
					}
				}
			}
			out = append(out, v)
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"availability_zones": out})
	return nil
}
