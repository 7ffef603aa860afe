package network

import (
	"context"
	"fmt"
	"net/http"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

var fipAttrs = newAttrSpec(
	"port_id fixed_ip_address description",
	"floating_network_id floating_ip_address subnet_id tenant_id project_id",
	"id status router_id port_details created_at updated_at revision_number tags port_forwardings")

func (s *Service) floatingIPs(*memdb.Txn) api.Collection[FloatingIP] {
	return api.Collection[FloatingIP]{Table: tFloatingIPs, One: "floatingip", Project: func(f *FloatingIP) string { return f.Project },
		View: fipView, NotFound: func(id string) error { return notFound("floatingip", id) }, Listing: s.listing("floatingips")}
}

func fipView(tx *memdb.Txn, _ *api.Principal, f *FloatingIP) api.View {
	var details any
	if pt := store.Get[Port](tx, tPorts, f.FixedPortID); pt != nil {
		details = map[string]any{"name": pt.Name, "network_id": pt.NetworkID, "mac_address": pt.MAC,
			"admin_state_up": pt.AdminStateUp, "status": pt.Status, "device_id": pt.DeviceID, "device_owner": pt.DeviceOwner}
	}
	return map[string]any{
		"id": f.ID, "tenant_id": f.Project, "project_id": f.Project, "description": f.Description,
		"floating_network_id": f.NetworkID, "floating_ip_address": f.IP, "fixed_ip_address": nullable(f.FixedIP),
		"port_id": nullable(f.FixedPortID), "router_id": nullable(f.RouterID), "status": f.Status, "port_details": details,
		"created_at": timeText(f.CreatedAt), "updated_at": timeText(f.UpdatedAt), "revision_number": f.Revision, "tags": tagList(f.Tags),
		"port_forwardings": fipForwardings(tx, f.ID),
	}
}

// readAssoc reads port_id and fixed_ip_address: nil when port_id is absent
// or null. The port must be one the caller may change.
func (s *Service) readAssoc(tx *memdb.Txn, p *api.Principal, rd *api.Input) *fipAssoc {
	port := rd.Str("port_id", "", 64)
	fixed := rd.Str("fixed_ip_address", "", 64)
	if rd.Err != nil || port == "" {
		if fixed != "" && rd.Err == nil {
			rd.Fail(badInput("fixed_ip_address", "a fixed address needs a port_id"))
		}
		return nil
	}
	if fixed != "" {
		a, err := parseIP(fixed)
		if err != nil {
			rd.Fail(badInput("fixed_ip_address", "%v", err))
			return nil
		}
		fixed = a.String()
	}
	if _, err := s.writablePort(tx, p, port, "update_floatingip"); err != nil {
		rd.Fail(err)
		return nil
	}
	return &fipAssoc{PortID: port, FixedIP: fixed}
}

func (s *Service) parseFIP(tx *memdb.Txn, p *api.Principal, o api.Object) (fipSpec, error) {
	if err := fipAttrs.check(o, http.MethodPost); err != nil {
		return fipSpec{}, err
	}
	rd := input(o)
	now := s.now()
	f := FloatingIP{ID: api.NewUUID(), PortID: api.NewUUID(), Status: "DOWN", CreatedAt: now, UpdatedAt: now}
	f.NetworkID = rd.Str("floating_network_id", "", 64)
	if rd.Err == nil && f.NetworkID == "" {
		return fipSpec{}, badInput("floating_network_id", "'floating_network_id' is a required property")
	}
	f.Description = rd.Str("description", "", 255)
	f.Project = readProject(rd, p)
	sp := fipSpec{SubnetID: rd.Str("subnet_id", "", 64)}
	if ip := rd.Str("floating_ip_address", "", 64); rd.Err == nil && ip != "" {
		a, err := parseIP(ip)
		switch {
		case err != nil:
			rd.Fail(badInput("floating_ip_address", "%v", err))
		case !p.IsAdmin():
			rd.Fail(policyDenied("create_floatingip:floating_ip_address"))
		}
		sp.IP = a.String()
	}
	if rd.Err != nil {
		return sp, rd.Err
	}
	if _, err := s.networks(tx).Get(tx, p, f.NetworkID); err != nil {
		return sp, err
	}
	sp.Assoc = s.readAssoc(tx, p, rd)
	sp.FIP = f
	return sp, rd.Err
}

func (s *Service) fipCreation() creation[fipSpec, FloatingIP] {
	return creation[fipSpec, FloatingIP]{one: "floatingip", many: "floatingips", parse: s.parseFIP,
		command: func(_ *memdb.Txn, specs []fipSpec) (string, any) { return cmdFIPCreate, fipCreateCmd{FIPs: specs} },
		view:    fipView}
}

func (s *Service) writableFIP(tx *memdb.Txn, p *api.Principal, id, action string) (*FloatingIP, error) {
	f, err := s.floatingIPs(tx).Get(tx, p, id)
	if err != nil {
		return nil, err
	}
	if !p.CanWrite(f.Project) {
		return nil, policyDenied(action)
	}
	return f, nil
}

func (s *Service) updateFIP(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	ch, err := readChange(s, r, "floatingip", fipAttrs, "update_floatingip", s.writableFIP)
	if err != nil {
		return err
	}
	rd := ch.in
	c := fipUpdateCmd{ifMatch: ch.match, ID: ch.row.ID, Now: s.now()}
	c.Description = optStr(rd, "description", 255)
	if rd.Has("port_id") {
		c.SetPort = true
		c.Assoc = s.readAssoc(ch.tx, p, rd)
	} else if rd.Has("fixed_ip_address") {
		rd.Fail(badInput("fixed_ip_address", "a fixed address needs a port_id"))
	}
	if rd.Err != nil {
		return rd.Err
	}
	var row FloatingIP
	tx, err := api.Propose(r.Context(), s.cfg.Repl, cmdFIPUpdate, c, &row)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"floatingip": fipView(tx, p, &row)})
	return nil
}

func (s *Service) deleteFIP(w http.ResponseWriter, r *http.Request) error {
	return remove(s, w, r, cmdFIPDelete, "delete_floatingip", s.writableFIP)
}

// SetFloatingIPStatus records what the node hosting a floating IP's port
// observed: ACTIVE once its dataplane forwards the address, DOWN or ERROR
// otherwise. An unassociated floating IP is never ACTIVE.
func (s *Service) SetFloatingIPStatus(ctx context.Context, id, status string) error {
	switch status {
	case "ACTIVE", "DOWN", "ERROR":
	default:
		return fmt.Errorf("set floating IP status: %q: %w", status, store.ErrInvalid)
	}
	if _, err := s.cfg.Repl.Propose(ctx, cmdFIPStatus, fipStatusCmd{ID: id, Status: status, Now: s.now()}); err != nil {
		return fmt.Errorf("set floating IP status: %w", err)
	}
	return nil
}
