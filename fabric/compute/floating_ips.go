package compute

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Nova's deprecated floating IP proxy: os-floating-ips and
// os-floating-ip-pools to microversion 2.35, the addFloatingIp and
// removeFloatingIp server actions to 2.43; past those they are 404, as
// in Nova. Nova keeps no floating IPs of its own: it asks Neutron, with
// the caller's credentials, and so does this proxy, through the network
// service (FloatingIPPorts). The floating IPs are the network API's, an
// association made here the one `openstack floating ip set --port`
// makes (the same command, router and dataplane programming), and one
// project never sees or touches another's.
//
// Each change is one command of the network service's replicated log,
// answered once committed (so it survives a kill -9); nothing is
// written before the checks pass, and an error whose outcome is unknown
// passes through unchanged, never reworded as a refusal.

// FloatingIPPorts is what the proxy needs of the network service beside
// Ports; a Ports without it leaves the proxy not implemented (501).
// Calls taking p see and change only what p could through the network
// API.
type FloatingIPPorts interface {
	// FloatingIPs lists project's floating IPs.
	FloatingIPs(ctx context.Context, project string) ([]FloatingIPInfo, error)
	// FloatingIP is floating IP id, if p may see it.
	FloatingIP(ctx context.Context, p *api.Principal, id string) (FloatingIPInfo, error)
	// FloatingIPByAddress finds the floating IP of address p may see:
	// not found, or a conflict when several have it.
	FloatingIPByAddress(ctx context.Context, p *api.Principal, address string) (FloatingIPInfo, error)
	// FloatingIPPools are the external networks p may see.
	FloatingIPPools(ctx context.Context, p *api.Principal) ([]NetworkInfo, error)
	// AllocateFloatingIP makes a floating IP for p's project on pool's
	// external network (by name or id; "" the default one).
	AllocateFloatingIP(ctx context.Context, p *api.Principal, pool string) (FloatingIPInfo, error)
	// ReleaseFloatingIP deletes floating IP id (disassociating it).
	ReleaseFloatingIP(ctx context.Context, p *api.Principal, id string) error
	// SetFloatingIPPort associates floating IP id with portID at
	// fixedIP, or with portID "" disassociates it; revision, if not
	// nil, is the floating IP's revision the change was decided on (a
	// floating IP changed since is a precondition error, unchanged).
	SetFloatingIPPort(ctx context.Context, p *api.Principal, id, portID, fixedIP string, revision *int) error
}

// FloatingIPInfo is a floating IP as Nova's proxy shows it. Pool is its
// external network's name (its id when it has none); PortID and FixedIP
// are empty when not associated; DeviceID is the associated port's
// device (a server's id).
type FloatingIPInfo struct {
	ID, IP, Project, Pool, PortID, FixedIP, DeviceID string
	Revision                                         int
}

const (
	maxFloatingActionMinor = 43 // addFloatingIp and removeFloatingIp end at 2.43
	floatingIPRule         = "os_compute_api:os-floating-ips"
)

// floatingIPs is the network service's floating IPs for the proxy: 404
// past 2.35, 501 without them.
func (s *Service) floatingIPs(r *http.Request) (FloatingIPPorts, error) {
	if atLeast(r, maxProxyMinor+1) {
		return nil, unknownResource()
	}
	fp, ok := s.cfg.Ports.(FloatingIPPorts)
	if !ok {
		return nil, notImplemented("The floating IP proxy (os-floating-ips) is not implemented by this cloud: use the network API's floating IPs.")
	}
	return fp, nil
}

// floatingIPView is Nova's _translate_floating_ip_view.
func floatingIPView(f FloatingIPInfo) map[string]any {
	var fixed, instance any
	if f.FixedIP != "" {
		fixed = f.FixedIP
	}
	if f.PortID != "" {
		instance = f.DeviceID
	}
	return map[string]any{"id": f.ID, "ip": f.IP, "pool": f.Pool, "fixed_ip": fixed, "instance_id": instance}
}

func (s *Service) listFloatingIPs(w http.ResponseWriter, r *http.Request) error {
	fp, err := s.floatingIPs(r)
	if err != nil {
		return err
	}
	fips, err := fp.FloatingIPs(r.Context(), principal(r).ProjectID)
	if err != nil {
		return err
	}
	out := []any{}
	for _, f := range fips {
		out = append(out, floatingIPView(f))
	}
	api.JSON(w, http.StatusOK, map[string]any{"floating_ips": out})
	return nil
}

// findFloatingIP is floating IP {id} as the caller sees it; any other is
// Nova's 404.
func findFloatingIP(r *http.Request, fp FloatingIPPorts) (FloatingIPInfo, error) {
	id := pathParam(r, "id")
	f, err := fp.FloatingIP(r.Context(), principal(r), id)
	if store.KindOf(err) == store.KindNotFound {
		return f, notFound("Floating IP not found for ID %s", id)
	}
	return f, err
}

func (s *Service) showFloatingIP(w http.ResponseWriter, r *http.Request) error {
	fp, err := s.floatingIPs(r)
	if err != nil {
		return err
	}
	f, err := findFloatingIP(r, fp)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"floating_ip": floatingIPView(f)})
	return nil
}

// createFloatingIP allocates a floating IP from {"pool": name} (the body
// and the pool optional, as in Nova), in the caller's project.
func (s *Service) createFloatingIP(w http.ResponseWriter, r *http.Request) error {
	fp, err := s.floatingIPs(r)
	if err != nil {
		return err
	}
	p := principal(r)
	if !p.CanWrite(p.ProjectID) {
		return policyDenied(floatingIPRule + ":create")
	}
	pool := ""
	if r.ContentLength != 0 {
		body, err := readRaw(r)
		if err != nil {
			return err
		}
		switch v := body["pool"].(type) {
		case nil:
		case string:
			pool = v
		default:
			return badField("pool", v, "%s is not of type 'string'", api.Text(v))
		}
	}
	f, err := fp.AllocateFloatingIP(r.Context(), p, pool)
	if err != nil {
		return allocationError(err, pool)
	}
	api.JSON(w, http.StatusOK, map[string]any{"floating_ip": floatingIPView(f)})
	return nil
}

// allocationError words the network service's refusal of an allocation
// as Nova does: no address left 404, over quota 403, a bad request 400.
func allocationError(err error, pool string) error {
	in := ""
	if pool != "" {
		in = " in pool " + pool
	}
	switch fault := api.ProblemOf(err).Fault; {
	case fault == "IpAddressGenerationFailure":
		if pool != "" {
			return notFound("No more floating IPs%s.", in)
		}
		return notFound("No more floating IPs available.")
	case fault == "OverQuota" || store.KindOf(err) == store.KindOverQuota:
		return forbidden("IP allocation over quota%s.", in)
	case store.KindOf(err) == store.KindConflict:
		return badRequest("%s", api.ProblemOf(err).Msg)
	}
	return err
}

func (s *Service) deleteFloatingIP(w http.ResponseWriter, r *http.Request) error {
	fp, err := s.floatingIPs(r)
	if err != nil {
		return err
	}
	p := principal(r)
	if !p.CanWrite(p.ProjectID) {
		return policyDenied(floatingIPRule + ":delete")
	}
	f, err := findFloatingIP(r, fp)
	if err != nil {
		return err
	}
	if err := fp.ReleaseFloatingIP(r.Context(), p, f.ID); err != nil {
		if store.KindOf(err) == store.KindNotFound {
			return notFound("Floating IP not found for ID %s", f.ID)
		}
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Service) listFloatingIPPools(w http.ResponseWriter, r *http.Request) error {
	fp, err := s.floatingIPs(r)
	if err != nil {
		return err
	}
	nets, err := fp.FloatingIPPools(r.Context(), principal(r))
	if err != nil {
		return err
	}
	out := []any{}
	for _, n := range nets {
		name := n.Name
		if name == "" {
			name = n.ID
		}
		out = append(out, map[string]any{"name": name})
	}
	api.JSON(w, http.StatusOK, map[string]any{"floating_ip_pools": out})
	return nil
}

// readFloatingAction reads {"address": ip[, "fixed_address": ip]} as
// Nova's add_floating_ip and remove_floating_ip schemas do.
func readFloatingAction(key string, arg any, fixed bool) (address, fixedAddress string, err error) {
	m, ok := arg.(map[string]any)
	if !ok {
		return "", "", badField(key, arg, "%s is not of type 'object'", api.Text(arg))
	}
	names := []string{"address"}
	if fixed {
		names = append(names, "fixed_address")
	}
	if err := allowOnly(m, names...); err != nil {
		return "", "", err
	}
	if _, ok := m["address"]; !ok {
		return "", "", missing("address")
	}
	ip := func(f string) (string, error) {
		v := m[f]
		s, ok := v.(string)
		if !ok {
			return "", badField(f, v, "%s is not of type 'string'", api.Text(v))
		}
		if _, err := netip.ParseAddr(s); err != nil {
			return "", badField(f, v, "'%s' is not valid under any of the given schemas", s)
		}
		return s, nil
	}
	if address, err = ip("address"); err != nil {
		return "", "", err
	}
	if _, ok := m["fixed_address"]; ok && fixed {
		if fixedAddress, err = ip("fixed_address"); err != nil {
			return "", "", err
		}
	}
	return address, fixedAddress, nil
}

// floatingAction is addFloatingIp or removeFloatingIp: 404 past 2.43
// (Nova's VersionNotFoundForAPIMethod), 501 without the network
// service's floating IPs.
func (s *Service) floatingAction(w http.ResponseWriter, r *http.Request, key string, arg any) error {
	if atLeast(r, maxFloatingActionMinor+1) {
		return unknownResource()
	}
	add := key == "addFloatingIp"
	address, fixed, err := readFloatingAction(key, arg, add)
	if err != nil {
		return err
	}
	rule := floatingIPRule + ":remove"
	if add {
		rule = floatingIPRule + ":add"
	}
	sv, err := s.readServer(r, rule)
	if err != nil {
		return err
	}
	fp, ok := s.cfg.Ports.(FloatingIPPorts)
	if !ok {
		return notImplemented("The server action %s is not implemented by this cloud.", key)
	}
	if add {
		err = s.addFloatingIP(r, fp, sv, address, fixed)
	} else {
		err = s.removeFloatingIP(r, fp, sv, address)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// findAddress is the floating IP of address the caller sees, or Nova's
// 404 (its 409 for several).
func findAddress(r *http.Request, fp FloatingIPPorts, address string) (FloatingIPInfo, error) {
	f, err := fp.FloatingIPByAddress(r.Context(), principal(r), address)
	switch store.KindOf(err) {
	case store.KindNotFound:
		return f, notFound("floating IP not found")
	case store.KindConflict:
		return f, conflict("%s", api.ProblemOf(err).Msg)
	}
	return f, err
}

// addFloatingIP associates the floating IP of address with the server's
// port holding fixed (none given: the server's first IPv4 address), as
// Nova's _add_floating_ip. A floating IP associated elsewhere moves, as
// Neutron lets Nova move it. Neutron's refusals (no router from the
// port's subnet to the floating IP's network, the fixed address has a
// floating IP there already) are Nova's 400.
func (s *Service) addFloatingIP(r *http.Request, fp FloatingIPPorts, sv *Server, address, fixed string) error {
	ctx := r.Context()
	type fixedIP struct{ port, ip string }
	var ips []fixedIP
	for _, id := range sv.Ports {
		pt, err := s.cfg.Ports.Port(ctx, nil, id)
		if store.KindOf(err) == store.KindNotFound {
			continue // a port deleted since the server was read
		}
		if err != nil {
			return err
		}
		for _, ip := range pt.IPs {
			ips = append(ips, fixedIP{pt.ID, ip})
		}
	}
	if len(sv.Ports) == 0 {
		return badRequest("Instance network is not ready yet")
	}
	if len(ips) == 0 {
		return badRequest("No fixed IPs associated to instance")
	}
	var on *fixedIP
	for i, ip := range ips {
		a, _ := netip.ParseAddr(ip.ip)
		if fixed != "" && ip.ip == fixed || fixed == "" && a.Is4() {
			on = &ips[i]
			break
		}
	}
	switch {
	case on == nil && fixed != "":
		return badRequest("Specified fixed address not assigned to instance")
	case on == nil:
		return badRequest("Unable to associate floating IP %s to any fixed IPs for instance %s. Instance has no fixed IPv4 addresses to associate.", address, sv.ID)
	}
	f, err := findAddress(r, fp, address)
	if err != nil {
		return err
	}
	err = fp.SetFloatingIPPort(ctx, principal(r), f.ID, on.port, on.ip, nil)
	switch store.KindOf(err) {
	case store.KindConflict, store.KindNotFound, store.KindInvalid, store.KindPrecondition:
		return badRequest("Unable to associate floating IP %s to fixed IP %s for instance %s. Error: %s", address, on.ip, sv.ID, api.ProblemOf(err).Msg)
	}
	return err
}

// removeFloatingIP disassociates the floating IP of address from the
// server, as Nova's _remove_floating_ip: one not associated with this
// server is 409. It is disassociated at the revision it was found
// associated at, so a floating IP moved meanwhile stays where it went.
func (s *Service) removeFloatingIP(r *http.Request, fp FloatingIPPorts, sv *Server, address string) error {
	notHere := conflict("Floating IP %s is not associated with instance %s.", address, sv.ID)
	for range floatingIPTries {
		f, err := findAddress(r, fp, address)
		if err != nil {
			return err
		}
		if f.PortID == "" || f.DeviceID != sv.ID {
			return notHere
		}
		rev := f.Revision
		err = fp.SetFloatingIPPort(r.Context(), principal(r), f.ID, "", "", &rev)
		switch store.KindOf(err) {
		case store.KindPrecondition:
			continue // changed since it was read: read it again
		case store.KindNotFound:
			return notHere
		}
		return err
	}
	return conflict("Floating IP %s kept changing; it was not disassociated.", address)
}

// floatingIPTries bounds the rereads of a floating IP that changed
// between its reading and its disassociation.
const floatingIPTries = 3
