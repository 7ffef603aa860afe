package compute

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// fakeImages holds images by id, all visible to everyone.
type fakeImages map[string]ImageInfo

func (f fakeImages) Get(_ context.Context, _ *api.Principal, id string) (ImageInfo, error) {
	img, ok := f[id]
	if !ok {
		return ImageInfo{}, store.NotFoundf("No image found with ID %s", id)
	}
	return img, nil
}

// fakePorts is an in-memory network service: networks by project, ports
// with one address each.
type fakePorts struct {
	mu       sync.Mutex
	networks map[string]NetworkInfo
	ports    map[string]*PortInfo
	next     int
	// failCreate makes the nth Create (1-based) fail.
	failCreate, creates int
	// onDelete, if set, is called with each port Delete removes.
	onDelete func(portID string)
}

func newFakePorts() *fakePorts {
	return &fakePorts{networks: map[string]NetworkInfo{}, ports: map[string]*PortInfo{}}
}

func (f *fakePorts) addNetwork(id, name, project string, shared bool) {
	f.networks[id] = NetworkInfo{ID: id, Name: name, Project: project, Shared: shared}
}

func (f *fakePorts) visible(p *api.Principal, n NetworkInfo) bool {
	return n.Shared || p.IsAdmin() || n.Project == p.ProjectID
}

func (f *fakePorts) Network(_ context.Context, p *api.Principal, id string) (NetworkInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.networks[id]
	if !ok || !f.visible(p, n) {
		return NetworkInfo{}, store.NotFoundf("Network %s could not be found.", id)
	}
	return n, nil
}

func (f *fakePorts) Networks(_ context.Context, p *api.Principal) ([]NetworkInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []NetworkInfo
	for _, n := range f.networks {
		if n.Shared || n.Project == p.ProjectID {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *fakePorts) Port(_ context.Context, p *api.Principal, id string) (PortInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pt, ok := f.ports[id]
	if !ok || (p != nil && !p.IsAdmin() && pt.Project != p.ProjectID) {
		return PortInfo{}, store.NotFoundf("Port %s could not be found.", id)
	}
	return *pt, nil
}

func (f *fakePorts) Create(_ context.Context, p *api.Principal, req PortRequest) (PortInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	if f.failCreate != 0 && f.creates == f.failCreate {
		// As the network service words it: its fault name travels as data.
		return PortInfo{}, store.Fault(store.KindConflict, "IpAddressGenerationFailure", "No more IP addresses available on network %s.", req.NetworkID)
	}
	n, ok := f.networks[req.NetworkID]
	if !ok || !f.visible(p, n) {
		return PortInfo{}, store.NotFoundf("Network %s could not be found.", req.NetworkID)
	}
	f.next++
	ip := req.FixedIP
	if ip == "" {
		ip = fmt.Sprintf("10.0.0.%d", f.next+1)
	}
	pt := &PortInfo{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", f.next), NetworkID: n.ID, NetworkName: n.Name, Project: req.Project,
		MAC: fmt.Sprintf("fa:16:3e:00:00:%02x", f.next), DeviceID: req.DeviceID, DeviceOwner: req.DeviceOwner, IPs: []string{ip}}
	f.ports[pt.ID] = pt
	return *pt, nil
}

// userPort makes a port as a client would, not bound to anything.
func (f *fakePorts) userPort(network, project string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	id := fmt.Sprintf("00000000-0000-4000-9000-%012d", f.next)
	f.ports[id] = &PortInfo{ID: id, NetworkID: network, NetworkName: f.networks[network].Name, Project: project,
		MAC: fmt.Sprintf("fa:16:3e:00:01:%02x", f.next), IPs: []string{fmt.Sprintf("10.0.1.%d", f.next)}}
	return id
}

func (f *fakePorts) Bind(_ context.Context, portID, deviceID, host string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	pt, ok := f.ports[portID]
	if !ok {
		return store.NotFoundf("Port %s could not be found.", portID)
	}
	if deviceID != "" && pt.DeviceID != "" && pt.DeviceID != deviceID {
		return store.Conflictf("port %s is in use", portID)
	}
	pt.DeviceID, pt.Host = deviceID, host
	return nil
}

func (f *fakePorts) Delete(_ context.Context, portID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.ports[portID]; !ok {
		return store.NotFoundf("Port %s could not be found.", portID)
	}
	delete(f.ports, portID)
	if f.onDelete != nil {
		f.onDelete(portID)
	}
	return nil
}

func (f *fakePorts) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ports)
}

func (f *fakePorts) get(id string) (PortInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pt, ok := f.ports[id]
	if !ok {
		return PortInfo{}, false
	}
	return *pt, true
}

// fakeHosts is a fixed list of nodes.
type fakeHosts struct {
	mu    sync.Mutex
	hosts []Host
}

func (f *fakeHosts) Hosts(context.Context) ([]Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Host(nil), f.hosts...), nil
}

func (f *fakeHosts) setUp(name string, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.hosts {
		if f.hosts[i].Name == name {
			f.hosts[i].Up = up
		}
	}
}

// fakeConsoles answers console output and serial consoles.
type fakeConsoles struct{}

func (fakeConsoles) ConsoleOutput(_ context.Context, host, id string, length int) (string, error) {
	return fmt.Sprintf("console of %s on %s, %d lines\n", id, host, length), nil
}

func (fakeConsoles) ServeSerial(w http.ResponseWriter, _ *http.Request, s Server) {
	io.WriteString(w, "serial "+s.ID+" on "+s.Host)
}

func (fakeConsoles) ServeVNC(w http.ResponseWriter, _ *http.Request, s Server) {
	io.WriteString(w, "vnc "+s.ID+" on "+s.Host)
}
