package network

import (
	"math/big"
	"net/http"
	"net/netip"
	"sort"
	"strconv"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// GET /network-ip-availabilities and /network-ip-availabilities/{id}
// (extension network-ip-availability, admin only as in Neutron's
// default policy): per network and subnet, how many addresses the
// allocation pools hold (total_ips) and how many are given out
// (used_ips), read from the IPAM tables the FSM allocates from. A
// network without subnets is listed with none. Counts are JSON numbers
// of any size: an IPv6 /64's pool does not fit 64 bits.

func (s *Service) ipAvailabilityRoutes() []api.Route {
	return []api.Route{
		{Method: http.MethodGet, Path: "/v2.0/network-ip-availabilities", Access: api.Admin, Rule: "get_network_ip_availability", Handle: s.listIPAvailability},
		{Method: http.MethodGet, Path: "/v2.0/network-ip-availabilities/{id}", Access: api.Admin, Rule: "get_network_ip_availability", Handle: s.showIPAvailability},
	}
}

// poolTotal is how many addresses a subnet's allocation pools hold.
func poolTotal(sn *Subnet) *big.Int {
	total := new(big.Int)
	for _, p := range sn.AllocationPools {
		a, err1 := netip.ParseAddr(p.Start)
		b, err2 := netip.ParseAddr(p.End)
		if err1 != nil || err2 != nil || b.Less(a) {
			continue
		}
		n := new(big.Int).Sub(addrInt(b), addrInt(a))
		total.Add(total, n.Add(n, big.NewInt(1)))
	}
	return total
}

func ipAvailabilityView(tx *memdb.Txn, n *Network) api.View {
	subs := store.All[Subnet](tx, tSubnets, "network", n.ID)
	sort.SliceStable(subs, func(i, j int) bool { return subs[i].CreatedAt.Before(subs[j].CreatedAt) })
	total, used := new(big.Int), 0
	per := make([]map[string]any, 0, len(subs))
	for _, sn := range subs {
		t := poolTotal(sn)
		u := len(store.All[IPAllocation](tx, tAllocations, "subnet", sn.ID))
		total.Add(total, t)
		used += u
		per = append(per, map[string]any{"subnet_id": sn.ID, "subnet_name": sn.Name, "cidr": sn.CIDR, "ip_version": sn.IPVersion,
			"total_ips": t, "used_ips": u})
	}
	return map[string]any{"network_id": n.ID, "network_name": n.Name, "tenant_id": n.Project, "project_id": n.Project,
		"total_ips": total, "used_ips": used, "subnet_ip_availability": per}
}

// byIPVersion keeps the networks with a subnet of the version asked.
func byIPVersion(v api.View, want []string) (bool, error) {
	subs, _ := v["subnet_ip_availability"].([]map[string]any)
	for _, s := range subs {
		if api.MatchValue(strconv.Itoa(s["ip_version"].(int)), want) {
			return true, nil
		}
	}
	return false, nil
}

func (s *Service) listIPAvailability(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	views := []api.View{}
	for _, n := range store.All[Network](tx, tNetworks, "id") {
		views = append(views, ipAvailabilityView(tx, n))
	}
	l := s.listing("network_ip_availabilities")
	l.Filters["ip_version"] = byIPVersion
	return l.Write(w, r, views)
}

func (s *Service) showIPAvailability(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	n := store.Get[Network](tx, tNetworks, id)
	if n == nil {
		return store.Fault(store.KindNotFound, "NetworkNotFound", "Network %s could not be found.", id)
	}
	return api.Show(w, r, "network_ip_availability", ipAvailabilityView(tx, n))
}
