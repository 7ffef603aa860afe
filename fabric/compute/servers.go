package compute

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
)

// Servers: who may see and change one, update and delete. Create is in
// server_request.go (reading the body) and server_create.go (resolving
// it, the ports, the proposal); the views and lists are in
// server_views.go and server_list.go, the actions in server_actions.go,
// addresses, metadata and the action log in server_meta.go.

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// servers are the servers as a collection: another project's server, or
// one deleted while its node was down, does not exist for the caller.
func servers() api.Collection[Server] {
	return api.Collection[Server]{
		Table: tServers, One: "server",
		Visible:  func(p *api.Principal, sv *Server) bool { return !sv.Hidden && p.CanRead(sv.Project) },
		NotFound: serverNotFound,
	}
}

// visibleServer returns a server the caller may see, else a 404.
func visibleServer(tx *memdb.Txn, p *api.Principal, id string) (*Server, error) {
	return servers().Get(tx, p, id)
}

// writableServer is visibleServer for a change: a reader of the project
// gets 403.
func writableServer(tx *memdb.Txn, p *api.Principal, id, rule string) (*Server, error) {
	sv, err := visibleServer(tx, p, id)
	if err != nil {
		return nil, err
	}
	if !p.CanWrite(sv.Project) {
		return nil, policyDenied(rule)
	}
	return sv, nil
}

// refID takes an id out of a reference that may be an id or a URL.
func refID(v string) string {
	v = strings.TrimRight(v, "/")
	if i := strings.LastIndex(v, "/"); i >= 0 {
		return v[i+1:]
	}
	return v
}

func (s *Service) updateServer(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readServer(r, "os_compute_api:servers:update")
	if err != nil {
		return err
	}
	c, err := readServerUpdate(r, sv.ID)
	if err != nil {
		return err
	}
	c.Now = s.now()
	var row Server
	tx, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerUpdate, c, &row)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"server": s.serverView(r, tx, &row, true)})
	return nil
}

// readServerUpdate reads what an update changes.
func readServerUpdate(r *http.Request, id string) (serverUpdateCmd, error) {
	c := serverUpdateCmd{ID: id}
	o, _, err := readBody(r, "server")
	if err != nil {
		return c, err
	}
	fields := []string{"name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"}
	if atLeast(r, 19) {
		fields = append(fields, "description")
	}
	if atLeast(r, 90) {
		fields = append(fields, "hostname")
	}
	if err := allowOnly(o, fields...); err != nil {
		return c, err
	}
	in := newInput(o)
	c.Hostname = readHostname(r, in)
	if in.Has("name") {
		n := str(in, "name", false, 1, 255)
		c.Name = &n
	}
	readChangedAttrs(in, &c.AccessIPv4, &c.AccessIPv6, &c.DiskConfig, &c.Description)
	return c, in.Err
}

// readChangedAttrs reads the attributes update and rebuild both set, each
// into its command's field when the request has it: the access
// addresses, the disk config and the description.
func readChangedAttrs(in *api.Input, v4, v6, disk, desc **string) {
	for _, f := range []struct {
		name string
		dst  **string
		v6   bool
	}{{"accessIPv4", v4, false}, {"accessIPv6", v6, true}} {
		if in.Has(f.name) {
			v := accessIP(in, f.name, f.v6)
			*f.dst = &v
		}
	}
	if in.Has("OS-DCF:diskConfig") {
		dc := diskConfig(in)
		*disk = &dc
	}
	if in.Has("description") {
		d := optStr(in, "description", 255)
		*desc = &d
	}
}

func (s *Service) deleteServer(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readServer(r, "os_compute_api:servers:delete")
	if err != nil {
		return err
	}
	if _, err := s.act(r, sv, "delete", false); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// releasePorts deletes the ports the service made for a server and
// unbinds the client's own.
func (s *Service) releasePorts(ctx context.Context, sv *Server) {
	if s.cfg.Ports == nil {
		return
	}
	for _, id := range sv.Ports {
		var err error
		if slices.Contains(sv.CreatedPorts, id) {
			err = s.cfg.Ports.Delete(ctx, id)
		} else {
			err = s.cfg.Ports.Bind(ctx, id, "", "")
		}
		if err != nil && api.StatusOf(err) != http.StatusNotFound {
			s.log.Warn("release port of a deleted server", "server", sv.ID, "port", id, "err", err)
		}
	}
}

func (s *Service) hostUp(ctx context.Context, name string) bool {
	if s.cfg.Hosts == nil || name == "" {
		return false
	}
	hs, err := s.cfg.Hosts.Hosts(ctx)
	if err != nil {
		return true // unknown: assume up, so the node still owns the delete
	}
	for _, h := range hs {
		if h.Name == name {
			return h.Up
		}
	}
	return false
}

// diskConfigOf is a server's OS-DCF:diskConfig; servers made before it
// was kept are MANUAL, as every server was then.
func diskConfigOf(sv *Server) string {
	if sv.DiskConfig == "" {
		return "MANUAL"
	}
	return sv.DiskConfig
}
