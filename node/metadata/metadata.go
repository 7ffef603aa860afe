// Package metadata is the node's metadata service: the HTTP server guests
// reach at 169.254.169.254. It answers OpenStack's
// /openstack/<version>/{meta_data.json, user_data, network_data.json,
// vendor_data.json} with what the config drive holds (node/configdrive
// builds both) and EC2's /latest/meta-data/ and /latest/user-data.
// meta_data.json's "devices" are the server's tagged NICs and volumes
// (devices.go); here, unlike on the config drive, with the PCI addresses
// the running guest's hypervisor reports (Config.GuestDevices).
//
// It knows which server asks only by the packet's source address: the
// dataplane rewrites each port's requests to come from a link-local
// address of that port's own (Ports), so a guest cannot ask as another.
// It must never trust anything in the request itself (headers, path) to
// say who is asking.
package metadata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/node/configdrive"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// Ports names the port whose requests come from a source address.
type Ports interface {
	MetadataPort(addr netip.Addr) (portID string, ok bool)
}

// Config configures the server.
type Config struct {
	Ports Ports
	// State reads the replicated state (servers and ports).
	State func(ctx context.Context) (*memdb.Txn, error)
	// SetPassword keeps the password a server's guest posts to
	// /openstack/<version>/password (Nova's server password, which its
	// owner reads through os-server-password); nil: the path is not
	// served.
	SetPassword func(ctx context.Context, serverID, password string) error
	// GuestDevices says where a running guest's devices are (the
	// node's hypervisor.Devices), for the PCI addresses of the tagged
	// devices in meta_data.json; nil, or an error, lists them without.
	GuestDevices func(ctx context.Context, serverID string) ([]hypervisor.GuestDevice, error)
	Log          *slog.Logger
}

// Server answers metadata requests.
type Server struct {
	cfg  Config
	live liveDevices
}

// New builds the server.
func New(cfg Config) (*Server, error) {
	if cfg.Ports == nil || cfg.State == nil {
		return nil, errors.New("metadata: Ports and State are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Server{cfg: cfg}, nil
}

// Serve answers on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metadata: %w", err)
	}
	return nil
}

// errUnknown is a request from an address no port of this node has;
// errNoServer one from a port no server holds.
var (
	errUnknown  = errors.New("no port of this node sends from this address")
	errNoServer = errors.New("the port belongs to no server")
)

// caller is the server and port a request comes from, by its source
// address alone.
func (s *Server) caller(r *http.Request) (*computestate.Server, *netstate.Port, *memdb.Txn, error) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return nil, nil, nil, errUnknown
	}
	id, ok := s.cfg.Ports.MetadataPort(ap.Addr().Unmap())
	if !ok {
		return nil, nil, nil, errUnknown
	}
	tx, err := s.cfg.State(r.Context())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read state: %w", err)
	}
	p := store.Get[netstate.Port](tx, netstate.TablePorts, id)
	if p == nil {
		return nil, nil, nil, errUnknown
	}
	sv := store.Get[computestate.Server](tx, computestate.TableServers, p.DeviceID)
	if sv == nil || !slices.Contains(sv.Ports, p.ID) {
		return nil, nil, nil, fmt.Errorf("port %s: %w", p.ID, errNoServer)
	}
	return sv, p, tx, nil
}

// drive is what the server's config drive holds, path → content, with
// the tagged devices at the addresses in live.
func drive(tx *memdb.Txn, sv *computestate.Server, live []hypervisor.GuestDevice) (map[string][]byte, error) {
	cd := Describe(*sv)
	cd.Devices = Devices(tx, sv, live)
	for _, id := range sv.Ports {
		p := store.Get[netstate.Port](tx, netstate.TablePorts, id)
		if p == nil {
			continue
		}
		mtu := 0
		if n := store.Get[netstate.Network](tx, netstate.TableNetworks, p.NetworkID); n != nil {
			mtu = n.MTU
		}
		cd.NICs = append(cd.NICs, NIC(*p, dataplane.DeviceName(p.ID), mtu))
	}
	return configdrive.Files(cd)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	post := r.Method == http.MethodPost && s.cfg.SetPassword != nil && passwordPath(r.URL.Path)
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !post {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	sv, port, tx, err := s.caller(r)
	if errors.Is(err, errUnknown) || errors.Is(err, errNoServer) {
		s.cfg.Log.Warn("metadata: no server to answer for", "from", r.RemoteAddr, "path", r.URL.Path, "err", err)
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if err != nil {
		s.cfg.Log.Warn("metadata", "err", err)
		http.Error(w, "metadata unavailable", http.StatusServiceUnavailable)
		return
	}
	if post {
		s.postPassword(w, r, sv)
		return
	}
	var live []hypervisor.GuestDevice
	if s.cfg.GuestDevices != nil && tagged(tx, sv) {
		if live, err = s.live.get(r.Context(), s.cfg.GuestDevices, sv.ID); err != nil {
			// The devices are listed all the same, without addresses.
			s.cfg.Log.Warn("metadata: the guest's device addresses", "server", sv.ID, "err", err)
		}
	}
	files, err := drive(tx, sv, live)
	if err != nil {
		s.cfg.Log.Warn("metadata: build", "server", sv.ID, "err", err)
		http.Error(w, "metadata unavailable", http.StatusInternalServerError)
		return
	}
	if s.cfg.SetPassword != nil {
		// The metadata service's own file, as Nova's (not on the config
		// drive): what the guest posted, until its owner clears it.
		for _, v := range configdrive.Versions {
			files["openstack/"+v+"/password"] = []byte(sv.Password)
		}
	}
	path := strings.TrimPrefix(r.URL.Path, "/")
	if strings.HasPrefix(path, "openstack") {
		serveTree(w, files, path)
		return
	}
	serveTree(w, ec2(tx, sv, port, files), path)
}

// serveTree answers path from files: a file's bytes, or a directory's
// entries one a line (subdirectories with a trailing slash), as Nova's
// metadata API lists them.
func serveTree(w http.ResponseWriter, files map[string][]byte, path string) {
	clean := strings.TrimSuffix(path, "/")
	if b, ok := files[clean]; ok {
		ctype := "text/plain; charset=utf-8"
		if strings.HasSuffix(clean, ".json") {
			ctype = "application/json"
		}
		w.Header().Set("Content-Type", ctype)
		w.Write(b)
		return
	}
	prefix := clean + "/"
	if clean == "" {
		prefix = ""
	}
	seen := map[string]bool{}
	for name := range files {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		if head, _, dir := strings.Cut(rest, "/"); dir {
			seen[head+"/"] = true
		} else {
			seen[head] = true
		}
	}
	if len(seen) == 0 {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		// A version lists as its name, as Nova's /openstack does.
		if clean == "openstack" || clean == "" {
			n = strings.TrimSuffix(n, "/")
		}
		names = append(names, n)
	}
	sort.Strings(names)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, strings.Join(names, "\n"))
}

// ec2 is EC2's metadata tree of the server, under latest/.
func ec2(tx *memdb.Txn, sv *computestate.Server, port *netstate.Port, files map[string][]byte) map[string][]byte {
	md := "latest/meta-data/"
	hostname := computestate.Hostname(sv)
	out := map[string][]byte{
		md + "instance-id":                 []byte(sv.ID),
		md + "hostname":                    []byte(hostname),
		md + "local-hostname":              []byte(hostname),
		md + "instance-type":               []byte(sv.Flavor.Name),
		md + "ami-launch-index":            []byte("0"),
		md + "placement/availability-zone": []byte(sv.AZ),
		md + "mac":                         []byte(port.MAC),
	}
	for _, f := range port.FixedIPs {
		if a, err := netip.ParseAddr(f.IP); err == nil && a.Is4() {
			out[md+"local-ipv4"] = []byte(f.IP)
			break
		}
	}
	for _, f := range store.All[netstate.FloatingIP](tx, netstate.TableFloatingIPs, "fixed_port", port.ID) {
		out[md+"public-ipv4"] = []byte(f.IP)
	}
	if sv.PublicKey != "" {
		out[md+"public-keys/0/openssh-key"] = []byte(sv.PublicKey)
	}
	for name, dev := range computestate.DeviceMapping(sv) {
		out[md+"block-device-mapping/"+name] = []byte(dev)
	}
	if ud, ok := files["openstack/latest/user_data"]; ok {
		out["latest/user-data"] = ud
	}
	return out
}

// passwordPath says whether path is a version's password file.
func passwordPath(path string) bool {
	v, ok := strings.CutSuffix(strings.TrimSuffix(strings.TrimPrefix(path, "/"), "/"), "/password")
	v, isOS := strings.CutPrefix(v, "openstack/")
	return ok && isOS && slices.Contains(configdrive.Versions, v)
}

// postPassword keeps the password the guest posts, as Nova's metadata
// service does: at most computestate.MaxPassword bytes (400 beyond),
// once until its owner clears it (409).
func (s *Server) postPassword(w http.ResponseWriter, r *http.Request, sv *computestate.Server) {
	body, err := io.ReadAll(io.LimitReader(r.Body, computestate.MaxPassword+1))
	if err != nil {
		http.Error(w, "cannot read the request", http.StatusBadRequest)
		return
	}
	if len(body) > computestate.MaxPassword {
		http.Error(w, "Request is too large.", http.StatusBadRequest)
		return
	}
	if sv.Password != "" {
		http.Error(w, "a password is already set", http.StatusConflict)
		return
	}
	// The whole body is read: the guest's post is kept even if it closes
	// its side of the connection before the answer (busybox nc, a guest
	// script's usual client, may), which would cancel the request's
	// context under the proposal and leave its outcome unknown.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	defer cancel()
	if err := s.cfg.SetPassword(ctx, sv.ID, string(body)); err != nil {
		switch {
		case errors.Is(err, store.ErrInvalid):
			http.Error(w, "invalid password", http.StatusBadRequest)
		case errors.Is(err, store.ErrConflict):
			http.Error(w, "a password is already set", http.StatusConflict)
		default:
			s.cfg.Log.Warn("metadata: keep password", "server", sv.ID, "err", err)
			http.Error(w, "metadata unavailable", http.StatusServiceUnavailable)
		}
		return
	}
	w.WriteHeader(http.StatusOK)
}
