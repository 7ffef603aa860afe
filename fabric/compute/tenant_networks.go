package compute

import (
	"net/http"

	"github.com/rackstack/rackstack/fabric/api"
)

// Nova's deprecated os-tenant-networks, up to 2.35 (404 from 2.36, as in
// Nova): the networks the caller may attach servers to (its project's and
// the shared ones), read from the network service, in nova-network's
// words (label, and a cidr Neutron's networks do not have). Creating and
// deleting them was nova-network's: gone (410), as in Nova.

func tenantNetworkView(_ *api.Principal, n NetworkInfo) map[string]any {
	return map[string]any{"id": n.ID, "label": n.Name, "cidr": nil}
}

// listNetworks and showNetwork answer Nova's two network proxies
// (os-tenant-networks, os-networks), to 2.35, each in its own view.
func (s *Service) listNetworks(view func(*api.Principal, NetworkInfo) map[string]any) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if atLeast(r, maxProxyMinor+1) {
			return unknownResource()
		}
		p := principal(r)
		ns, err := s.cfg.Ports.Networks(r.Context(), p)
		if err != nil {
			return err
		}
		out := make([]any, 0, len(ns))
		for _, n := range ns {
			out = append(out, view(p, n))
		}
		api.JSON(w, http.StatusOK, map[string]any{"networks": out})
		return nil
	}
}

func (s *Service) showNetwork(view func(*api.Principal, NetworkInfo) map[string]any) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if atLeast(r, maxProxyMinor+1) {
			return unknownResource()
		}
		p := principal(r)
		n, err := s.cfg.Ports.Network(r.Context(), p, pathParam(r, "id"))
		if api.StatusOf(err) == http.StatusNotFound {
			return notFound("Network not found")
		}
		if err != nil {
			return err
		}
		api.JSON(w, http.StatusOK, map[string]any{"network": view(p, n)})
		return nil
	}
}

// tenantNetworkGone answers create and delete: nova-network's, removed.
func (s *Service) tenantNetworkGone(w http.ResponseWriter, r *http.Request) error {
	if atLeast(r, maxProxyMinor+1) {
		return unknownResource()
	}
	return &api.Error{Status: http.StatusGone, Msg: "Creating and deleting networks through os-tenant-networks was nova-network's, which is gone: use the network API."}
}
