package network

import (
	"net/http"
	"sort"

	"github.com/rackstack/rackstack/fabric/api"
)

// Extension extraroute-atomic: PUT /routers/{id}/add_extraroutes and
// remove_extraroutes change a router's static routes by a set of routes,
// in one step against the routes the router has when the step is applied,
// so two clients adding routes at once do not lose each other's (as a
// read-modify-write of "routes" through update_router would).

// extraRouteAttrs is the one attribute the body's "router" may carry.
var extraRouteAttrs = newAttrSpec("routes", "", "")

// extraRoutes answers add_extraroutes (add) and remove_extraroutes: the
// body is {"router": {"routes": [...]}}, the answer the whole router.
// Adding a route the router has, or removing one it has not, is no error,
// as in Neutron.
func (s *Service) extraRoutes(add bool) api.HandlerFunc {
	action := "remove_extraroutes"
	if add {
		action = "add_extraroutes"
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		p := principal(r)
		ch, err := readChange(s, r, "router", extraRouteAttrs, action, s.writableRouter)
		if err != nil {
			return err
		}
		rd := ch.in
		if !rd.Has("routes") {
			return badInput("routes", "Failed to parse request. Required attribute 'routes' not specified")
		}
		routes := readRouterRoutes(rd)
		if rd.Err != nil {
			return rd.Err
		}
		c := routerUpdateCmd{ifMatch: ch.match, ID: ch.row.ID, Now: s.now()}
		if add {
			c.AddRoutes = *routes
		} else {
			c.RemoveRoutes = *routes
		}
		var row Router
		tx, err := api.Propose(r.Context(), s.cfg.Repl, cmdRouterUpdate, c, &row)
		if err != nil {
			return err
		}
		api.JSON(w, http.StatusOK, map[string]any{"router": s.routerView(tx, p, &row)})
		return nil
	}
}

// mergeRoutes is routes with add added (those not there yet, in order)
// and remove taken out, in the order update_router keeps them.
func mergeRoutes(routes, add, remove []HostRoute) []HostRoute {
	gone := map[HostRoute]bool{}
	for _, rt := range remove {
		gone[rt] = true
	}
	out := []HostRoute{}
	have := map[HostRoute]bool{}
	for _, rt := range append(append([]HostRoute{}, routes...), add...) {
		if gone[rt] || have[rt] {
			continue
		}
		have[rt] = true
		out = append(out, rt)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Destination+out[i].Nexthop < out[j].Destination+out[j].Nexthop })
	return out
}
