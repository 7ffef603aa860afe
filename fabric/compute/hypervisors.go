package compute

import (
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Hypervisors, services and availability zones are the cluster's nodes,
// read through Hosts; what runs on them comes from the servers table.

// hostIntID is a node's stable integer id (microversions before 2.53).
func hostIntID(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32()&0x7fffffff) | 1
}

// hostUUID is a node's stable UUID (2.53 on): a name-based (v5-style) one.
func hostUUID(kind, name string) string {
	sum := sha1.Sum([]byte("rackstack-" + kind + ":" + name))
	sum[6] = (sum[6] & 0x0f) | 0x50
	sum[8] = (sum[8] & 0x3f) | 0x80
	h := fmt.Sprintf("%x", sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func hypervisorID(r *http.Request, name string) any {
	if atLeast(r, 53) {
		return hostUUID("hypervisor", name)
	}
	return hostIntID(name)
}

func serviceID(r *http.Request, name string) any {
	if atLeast(r, 53) {
		return hostUUID("service", name)
	}
	return hostIntID(name)
}

// hostList is the cluster's nodes by name, and a read of the state.
func (s *Service) hostList(r *http.Request) ([]Host, *memdb.Txn, error) {
	var hs []Host
	if s.cfg.Hosts != nil {
		var err error
		if hs, err = s.cfg.Hosts.Hosts(r.Context()); err != nil {
			return nil, nil, err
		}
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Name < hs[j].Name })
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, nil, err
	}
	return withServiceStates(tx, hs), tx, nil
}

func state(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

type hostUse struct {
	vcpus, ram, disk int
	servers          []*Server
}

func usageOn(tx *memdb.Txn, host string) hostUse {
	var u hostUse
	for _, sv := range store.All[Server](tx, tServers, "host", host) {
		if sv.Baremetal != "" {
			continue // on a bare-metal node, not this host's hypervisor
		}
		u.vcpus += sv.Flavor.VCPUs
		u.ram += sv.Flavor.RAM
		u.disk += diskGB(sv)
		u.servers = append(u.servers, sv)
	}
	return u
}

func (s *Service) hypervisorView(r *http.Request, tx *memdb.Txn, h Host, detail, withServers bool) map[string]any {
	// A hypervisor's status and service are its nova-compute's
	// (os_services.go), as Nova shows them.
	svc := computestate.ServiceStateOf(tx, h.Name)
	status := "enabled"
	if svc.Disabled {
		status = "disabled"
	}
	v := map[string]any{"id": hypervisorID(r, h.Name), "hypervisor_hostname": h.Name, "state": state(h.Up), "status": status}
	u := usageOn(tx, h.Name)
	if withServers {
		list := []any{}
		for _, sv := range u.servers {
			if !sv.Hidden {
				list = append(list, map[string]any{"name": instanceName(sv), "uuid": sv.ID})
			}
		}
		if len(list) > 0 || atLeast(r, 75) {
			v["servers"] = list
		}
	}
	if !detail {
		return v
	}
	v["host_ip"] = h.HostIP
	v["hypervisor_type"] = "QEMU"
	v["hypervisor_version"] = 8002000
	v["service"] = map[string]any{"host": h.Name, "id": serviceID(r, h.Name), "disabled_reason": orNil(svc.DisabledReason)}
	if atLeast(r, 88) {
		// 2.88 drops the usage figures and cpu_info and adds uptime
		// (null, as Nova answers for a driver without it, only for a
		// node that has not said when it booted).
		v["uptime"] = nil
		if u := uptimeLine(h, s.now()); u != "" {
			v["uptime"] = u
		}
		return v
	}
	cpu := map[string]any{"arch": "x86_64", "model": h.CPUModel, "vendor": "", "features": []string{},
		"topology": map[string]any{"cores": h.VCPUs, "threads": 1, "sockets": 1}}
	var cpuInfo any = cpu
	if !atLeast(r, 28) {
		b, _ := json.Marshal(cpu)
		cpuInfo = string(b)
	}
	v["cpu_info"] = cpuInfo
	v["current_workload"] = 0
	v["disk_available_least"] = h.DiskGB - u.disk
	v["free_disk_gb"] = h.DiskGB - u.disk
	v["free_ram_mb"] = h.MemoryMB - u.ram
	v["local_gb"] = h.DiskGB
	v["local_gb_used"] = u.disk
	v["memory_mb"] = h.MemoryMB
	v["memory_mb_used"] = u.ram
	v["running_vms"] = len(u.servers)
	v["vcpus"] = h.VCPUs
	v["vcpus_used"] = u.vcpus
	return v
}

func (s *Service) listHypervisors(detail bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		hs, tx, err := s.hostList(r)
		if err != nil {
			return err
		}
		q := r.URL.Query()
		pattern, withServers := "", false
		if atLeast(r, 53) {
			pattern = q.Get("hypervisor_hostname_pattern")
			withServers, _ = api.ToBool(q.Get("with_servers"))
		}
		var keep []Host
		var ids []string
		for _, h := range hs {
			if pattern != "" && !strings.Contains(h.Name, pattern) {
				continue
			}
			keep = append(keep, h)
			ids = append(ids, fmt.Sprint(hypervisorID(r, h.Name)))
		}
		if pattern != "" && len(keep) == 0 {
			return notFound("No hypervisor matching '%s' could be found.", pattern)
		}
		from, to, next := 0, len(keep), ""
		if atLeast(r, 33) {
			if from, to, next, err = page(q, ids); err != nil {
				return err
			}
		}
		out := make([]any, 0, to-from)
		for _, h := range keep[from:to] {
			out = append(out, s.hypervisorView(r, tx, h, detail, withServers))
		}
		api.JSON(w, http.StatusOK, s.paged(r, "hypervisors", out, next))
		return nil
	}
}

func (s *Service) showHypervisor(w http.ResponseWriter, r *http.Request) error {
	hs, tx, err := s.hostList(r)
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	withServers := false
	if atLeast(r, 53) {
		withServers, _ = api.ToBool(r.URL.Query().Get("with_servers"))
	}
	for _, h := range hs {
		if fmt.Sprint(hypervisorID(r, h.Name)) == id {
			api.JSON(w, http.StatusOK, map[string]any{"hypervisor": s.hypervisorView(r, tx, h, true, withServers)})
			return nil
		}
	}
	return notFound("Hypervisor with ID '%s' could not be found.", id)
}

// searchHypervisors is gone in 2.53 for everyone, so the role check
// follows the microversion's.
func (s *Service) searchHypervisors(withServers bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if atLeast(r, 53) {
			return unknownResource()
		}
		if err := requireAdmin(r, "os_compute_api:os-hypervisors:search"); err != nil {
			return err
		}
		hs, tx, err := s.hostList(r)
		if err != nil {
			return err
		}
		pattern := chi.URLParam(r, "pattern")
		out := []any{}
		for _, h := range hs {
			if strings.Contains(h.Name, pattern) {
				out = append(out, s.hypervisorView(r, tx, h, false, withServers))
			}
		}
		if len(out) == 0 {
			return notFound("No hypervisor matching '%s' could be found.", pattern)
		}
		api.JSON(w, http.StatusOK, map[string]any{"hypervisors": out})
		return nil
	}
}

// hypervisorStats is GET /os-hypervisors/statistics, gone from 2.88 (404
// before the admin rule is checked, as Nova's version routing answers).
func (s *Service) hypervisorStats(w http.ResponseWriter, r *http.Request) error {
	if atLeast(r, 88) {
		return unknownResource()
	}
	if err := requireAdmin(r, "os_compute_api:os-hypervisors:statistics"); err != nil {
		return err
	}
	hs, tx, err := s.hostList(r)
	if err != nil {
		return err
	}
	st := map[string]int{}
	for _, h := range hs {
		u := usageOn(tx, h.Name)
		st["count"]++
		st["vcpus"] += h.VCPUs
		st["vcpus_used"] += u.vcpus
		st["memory_mb"] += h.MemoryMB
		st["memory_mb_used"] += u.ram
		st["free_ram_mb"] += h.MemoryMB - u.ram
		st["local_gb"] += h.DiskGB
		st["local_gb_used"] += u.disk
		st["free_disk_gb"] += h.DiskGB - u.disk
		st["disk_available_least"] += h.DiskGB - u.disk
		st["running_vms"] += len(u.servers)
	}
	out := map[string]any{}
	for _, k := range []string{"count", "vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "free_ram_mb", "local_gb",
		"local_gb_used", "free_disk_gb", "disk_available_least", "running_vms", "current_workload"} {
		out[k] = st[k]
	}
	api.JSON(w, http.StatusOK, map[string]any{"hypervisor_statistics": out})
	return nil
}

func (s *Service) listZones(detail bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		hs, tx, err := s.hostList(r)
		if err != nil {
			return err
		}
		// The zones are those of the nodes, as Nova lists the zones
		// of its compute services; the service's own with no node yet.
		zones := map[string]map[string]any{}
		avail := map[string]bool{}
		var order []string
		if len(hs) == 0 {
			order = []string{s.cfg.AZ}
			zones[s.cfg.AZ] = map[string]any{}
		}
		for _, h := range hs {
			az := s.hostAZ(tx, h)
			if _, ok := zones[az]; !ok {
				zones[az] = map[string]any{}
				order = append(order, az)
			}
			avail[az] = avail[az] || h.Up
			zones[az][h.Name] = map[string]any{"nova-compute": map[string]any{"available": h.Up, "active": true, "updated_at": timeOrNil(h.LastSeen)}}
		}
		out := []any{}
		for _, az := range order {
			var hosts any
			if detail {
				hosts = zones[az]
			}
			out = append(out, map[string]any{"zoneName": az, "zoneState": map[string]any{"available": avail[az] || len(hs) == 0}, "hosts": hosts})
		}
		// The detail shows the internal zone too, as Nova does: where the
		// conductors and schedulers run (see serviceBinaries).
		if detail && len(hs) > 0 {
			internal, up := map[string]any{}, false
			for _, h := range hs {
				svc := map[string]any{}
				for _, b := range []string{"nova-conductor", "nova-scheduler"} {
					svc[b] = map[string]any{"available": h.Up, "active": true, "updated_at": timeOrNil(h.LastSeen)}
				}
				internal[h.Name], up = svc, up || h.Up
			}
			out = append(out, map[string]any{"zoneName": internalZone, "zoneState": map[string]any{"available": up}, "hosts": internal})
		}
		api.JSON(w, http.StatusOK, map[string]any{"availabilityZoneInfo": out})
		return nil
	}
}

// ownAZ is a node's own availability zone, else the service's: its zone
// when no aggregate puts it in another.
func (s *Service) ownAZ(h Host) string {
	if h.AZ == "" {
		return s.cfg.AZ
	}
	return h.AZ
}

// hostAZ is a node's availability zone as everything shows it and the
// scheduler filters on it (computestate.NodeAZ).
func (s *Service) hostAZ(tx *memdb.Txn, h Host) string {
	return computestate.NodeAZ(tx, h.Name, s.ownAZ(h))
}

// The binaries every rackd runs, as Nova names them, in the order Nova
// lists its services. Each rackd is a conductor (its API proposes the
// builds and records what its node agent reports, the writes
// nova-conductor makes for nova-compute) and a scheduler (placement runs
// in the apply of a create, on every node); so all three are up or down
// with the node's cluster heartbeat. Conductor and scheduler live in
// Nova's internal zone.
var serviceBinaries = []string{"nova-conductor", "nova-scheduler", "nova-compute"}

const internalZone = "internal"

func (s *Service) listServices(w http.ResponseWriter, r *http.Request) error {
	hs, tx, err := s.hostList(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	out := []any{}
	for _, binary := range serviceBinaries {
		if q.Get("binary") != "" && q.Get("binary") != binary {
			continue
		}
		for _, h := range hs {
			if q.Get("host") != "" && q.Get("host") != h.Name {
				continue
			}
			out = append(out, s.serviceView(r, tx, binary, h))
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"services": out})
	return nil
}

func (s *Service) serviceView(r *http.Request, tx *memdb.Txn, binary string, h Host) map[string]any {
	// nova-compute keeps the id it has always had: the hypervisors'
	// "service" names it.
	id, zone := serviceID(r, h.Name), s.hostAZ(tx, h)
	if binary != "nova-compute" {
		id, zone = serviceID(r, binary+"@"+h.Name), internalZone
	}
	v := map[string]any{"id": id, "binary": binary, "host": h.Name, "zone": zone, "status": "enabled",
		"state": state(h.Up), "updated_at": timeOrNil(h.LastSeen), "disabled_reason": nil}
	if atLeast(r, 11) {
		v["forced_down"] = false
	}
	if binary == "nova-compute" {
		// What an admin set (os_services.go); h.Up already says down
		// when forced down.
		st := computestate.ServiceStateOf(tx, h.Name)
		if st.Disabled {
			v["status"] = "disabled"
			if st.DisabledReason != "" {
				v["disabled_reason"] = st.DisabledReason
			}
		}
		if atLeast(r, 11) {
			v["forced_down"] = st.ForcedDown
		}
	}
	return v
}

// hypervisorUptime is os-hypervisors/{id}/uptime (before 2.88): the
// node's uptime(1) line, as Nova's libvirt driver answers it; a node
// that has not said when it booted is Nova's answer for a driver
// without uptime, 501.
func (s *Service) hypervisorUptime(w http.ResponseWriter, r *http.Request) error {
	if atLeast(r, 88) {
		return unknownResource() // gone from 2.88: the detail has uptime
	}
	if err := requireAdmin(r, "os_compute_api:os-hypervisors:uptime"); err != nil {
		return err
	}
	hs, _, err := s.hostList(r)
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	for _, h := range hs {
		if fmt.Sprint(hypervisorID(r, h.Name)) == id {
			u := uptimeLine(h, s.now())
			if u == "" {
				return notImplemented("Virt driver does not implement uptime function.")
			}
			api.JSON(w, http.StatusOK, map[string]any{"hypervisor": map[string]any{
				"id": hypervisorID(r, h.Name), "hypervisor_hostname": h.Name, "state": state(h.Up), "status": "enabled", "uptime": u}})
			return nil
		}
	}
	return notFound("Hypervisor with ID '%s' could not be found.", id)
}

// uptimeLine is the node's uptime(1) line, as Nova's libvirt driver
// reports a host's uptime: " 17:37:14 up  2:33,  3 users,  load
// average: 0.33, 0.36, 0.34". "" when the node has not said when it
// booted or its load. The load and users are as of the node's last report (its
// inventory, sent about once a minute).
func uptimeLine(h Host, now time.Time) string {
	if h.Booted.IsZero() || len(h.LoadAverage) != 3 {
		return ""
	}
	up := now.Sub(h.Booted)
	if up < 0 {
		up = 0
	}
	days, hours, mins := int(up.Hours())/24, int(up.Hours())%24, int(up.Minutes())%60
	var b strings.Builder
	fmt.Fprintf(&b, " %s up ", now.Format("15:04:05"))
	if days > 0 {
		fmt.Fprintf(&b, "%d day", days)
		if days > 1 {
			b.WriteString("s")
		}
		b.WriteString(", ")
	}
	if hours > 0 {
		fmt.Fprintf(&b, "%2d:%02d", hours, mins)
	} else {
		fmt.Fprintf(&b, "%d min", mins)
	}
	users := "users"
	if h.Users == 1 {
		users = "user"
	}
	load := h.LoadAverage
	fmt.Fprintf(&b, ",  %d %s,  load average: %.2f, %.2f, %.2f", h.Users, users, load[0], load[1], load[2])
	return b.String()
}
