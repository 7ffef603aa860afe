package baremetal

import (
	"net/http"
	"slices"
	"sort"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// driver is one of Ironic's hardware types as Rackstack runs it: the
// conductor drives ipmi and redfish BMCs and an in-memory fake.
type driver struct {
	name string
	// interfaces are the defaults of a new node (Ironic's
	// default_<kind>_interface for the hardware type); alternatives are
	// the other values a node may choose.
	interfaces   map[string]string
	alternatives map[string][]string
	// required are the driver_info keys the power and management
	// interfaces cannot work without; properties describes every key.
	required    []string
	properties  map[string]string
	bootDevices []string
}

// interfaceKinds are Ironic's node interfaces, each a "<kind>_interface"
// field.
var interfaceKinds = []string{"bios", "boot", "console", "deploy", "firmware", "inspect", "management", "network", "power", "raid", "rescue", "storage", "vendor"}

func commonInterfaces(power, management string) map[string]string {
	return map[string]string{
		"bios": "no-bios", "boot": "ipxe", "console": "no-console", "deploy": "direct", "firmware": "no-firmware",
		"inspect": "agent", "management": management, "network": "noop", "power": power, "raid": "no-raid",
		"rescue": "no-rescue", "storage": "noop", "vendor": "no-vendor",
	}
}

func fakeInterfaces() map[string]string {
	m := map[string]string{"network": "noop", "storage": "noop"}
	for _, k := range interfaceKinds {
		if m[k] == "" {
			m[k] = "fake"
		}
	}
	return m
}

// enabled lists the values interface kind may take on a node of d.
func (d *driver) enabled(kind string) []string {
	return append([]string{d.interfaces[kind]}, d.alternatives[kind]...)
}

var drivers = []driver{
	{
		// Ironic's fake-hardware: every interface "fake" by default, the
		// optional ones may be turned off.
		name: "fake-hardware", interfaces: fakeInterfaces(),
		alternatives: map[string][]string{
			"bios": {"no-bios"}, "console": {"no-console"}, "firmware": {"no-firmware"}, "inspect": {"no-inspect"},
			"raid": {"no-raid"}, "rescue": {"no-rescue"}, "vendor": {"no-vendor"},
		},
		properties:  map[string]string{},
		bootDevices: []string{"pxe", "disk"},
	},
	{
		name: "ipmi", interfaces: commonInterfaces("ipmitool", "ipmitool"),
		required: []string{"ipmi_address"},
		properties: map[string]string{
			"ipmi_address":  "IP address or hostname of the node's BMC. Required.",
			"ipmi_port":     "remote IPMI RMCP port. Optional (default 623).",
			"ipmi_username": "username; default is NULL user. Optional.",
			"ipmi_password": "password. Optional. Sealed with the cluster key and never shown.",
		},
		bootDevices: []string{"pxe", "disk", "cdrom", "bios", "safe"},
	},
	{
		name: "redfish", interfaces: commonInterfaces("redfish", "redfish"),
		required: []string{"redfish_address", "redfish_system_id"},
		properties: map[string]string{
			"redfish_address":   "The URL address to the Redfish controller. It must include the authority portion of the URL, and can optionally include the scheme. If the scheme is missing, https is assumed. Required.",
			"redfish_system_id": "The canonical path to the ComputerSystem resource that the driver will interact with. Required.",
			"redfish_username":  "User account with admin/server-profile access privilege. Optional.",
			"redfish_password":  "User account password. Optional. Sealed with the cluster key and never shown.",
			"redfish_verify_ca": "Either a Boolean value, a path to a CA_BUNDLE file or directory with certificates of trusted CAs. Optional (default True).",
		},
		bootDevices: []string{"pxe", "disk", "cdrom", "bios"},
	},
}

func findDriver(name string) *driver {
	for i := range drivers {
		if drivers[i].name == name {
			return &drivers[i]
		}
	}
	return nil
}

// conductorAlive reports whether a conductor refreshed its row recently.
func (s *Service) conductorAlive(c *bmstate.Conductor) bool {
	return s.cfg.Now().Sub(c.Updated) < s.cfg.ConductorTimeout
}

// hosts are the live conductors that drive d.
func (s *Service) hosts(tx *memdb.Txn, d *driver) []string {
	out := []string{}
	for _, c := range store.All[bmstate.Conductor](tx, bmstate.ConductorTable, "id") {
		if s.conductorAlive(c) && (len(c.Drivers) == 0 || slices.Contains(c.Drivers, d.name)) {
			out = append(out, c.ID)
		}
	}
	return out
}

func (s *Service) driverView(r *http.Request, tx *memdb.Txn, d *driver, detail bool) api.View {
	base := s.baseURL(r)
	v := api.View{
		"name": d.name, "hosts": s.hosts(tx, d), "type": "dynamic",
		"links": []any{
			map[string]any{"href": base + "/v1/drivers/" + d.name, "rel": "self"},
			map[string]any{"href": base + "/drivers/" + d.name, "rel": "bookmark"},
		},
		"properties": []any{
			map[string]any{"href": base + "/v1/drivers/" + d.name + "/properties", "rel": "self"},
			map[string]any{"href": base + "/drivers/" + d.name + "/properties", "rel": "bookmark"},
		},
	}
	if detail {
		for _, k := range interfaceKinds {
			v["default_"+k+"_interface"] = d.interfaces[k]
			v["enabled_"+k+"_interfaces"] = d.enabled(k)
		}
	}
	return v
}

func (s *Service) listDrivers(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if t := q.Get("type"); t != "" && t != "dynamic" && t != "classic" {
		return badRequestf("Invalid driver type %q: it must be \"classic\" or \"dynamic\".", t)
	}
	detail, _ := api.ToBool(q.Get("detail"))
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	out := []any{}
	if q.Get("type") != "classic" {
		for i := range drivers {
			out = append(out, api.Pick(s.driverView(r, tx, &drivers[i], detail), api.Fields(q)))
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"drivers": out})
	return nil
}

func (s *Service) driverParam(r *http.Request) (*driver, error) {
	name := chi.URLParam(r, "driver")
	d := findDriver(name)
	if d == nil {
		return nil, notFoundf("Could not find the following driver(s) or hardware type(s): %s.", name)
	}
	return d, nil
}

func (s *Service) showDriver(w http.ResponseWriter, r *http.Request) error {
	d, err := s.driverParam(r)
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, api.Pick(s.driverView(r, tx, d, true), api.Fields(r.URL.Query())))
	return nil
}

func (s *Service) driverProperties(w http.ResponseWriter, r *http.Request) error {
	d, err := s.driverParam(r)
	if err != nil {
		return err
	}
	props := map[string]any{
		"deploy_kernel":  "UUID (from Glance) of the deployment kernel. Not used: Rackstack boots its own ramdisk.",
		"deploy_ramdisk": "UUID (from Glance) of the ramdisk that is mounted at boot time. Not used: Rackstack boots its own ramdisk.",
	}
	for k, v := range d.properties {
		props[k] = v
	}
	api.JSON(w, http.StatusOK, props)
	return nil
}

// raidDiskProperties are the logical disk properties of Ironic's RAID
// schema, which the fake RAID interface takes.
var raidDiskProperties = map[string]any{
	"raid_level":               "RAID level for the logical disk. Valid values are '0', '1', '2', '5', '6', '1+0', '5+0', '6+0' and 'JBOD'. Required.",
	"size_gb":                  "Size in GiB (integer) for the logical disk, or 'MAX' for the largest possible. Required.",
	"volume_name":              "Name of the volume. Optional.",
	"is_root_volume":           "Whether the logical disk is the root volume. Optional.",
	"share_physical_disks":     "Whether the logical disk may share physical disks with others. Optional.",
	"disk_type":                "The type of disk preferred: 'hdd' or 'ssd'. Optional.",
	"interface_type":           "The interface type of disk: 'sata', 'scsi' or 'sas'. Optional.",
	"number_of_physical_disks": "Number of physical disks to use for this logical disk. Optional.",
	"controller":               "Name of the controller. Optional.",
	"physical_disks":           "The physical disks to use for this logical disk. Optional.",
}

// driverRAIDProperties answers a hardware type's RAID logical disk
// properties (1.12) when its default RAID interface takes a RAID
// configuration; none of the others does.
func (s *Service) driverRAIDProperties(w http.ResponseWriter, r *http.Request) error {
	d, err := s.driverParam(r)
	if err != nil {
		return err
	}
	if d.interfaces["raid"] != "fake" {
		return badRequestf("Driver %s does not support RAID configuration: its raid interface is %s.", d.name, d.interfaces["raid"])
	}
	api.JSON(w, http.StatusOK, raidDiskProperties)
	return nil
}

// Conductors (1.49): the rackd nodes with provisioning services, as the
// conductor agents register them.

func (s *Service) conductorView(r *http.Request, c *bmstate.Conductor, detail bool) api.View {
	base := s.baseURL(r)
	v := api.View{
		"hostname": c.ID, "conductor_group": "", "alive": s.conductorAlive(c),
		"links": []any{
			map[string]any{"href": base + "/v1/conductors/" + c.ID, "rel": "self"},
			map[string]any{"href": base + "/conductors/" + c.ID, "rel": "bookmark"},
		},
	}
	if detail {
		drv := slices.Clone(c.Drivers)
		if len(drv) == 0 {
			for _, d := range drivers {
				drv = append(drv, d.name)
			}
		}
		sort.Strings(drv)
		v["drivers"] = drv
		v["created_at"] = timeText(c.Updated)
		v["updated_at"] = timeText(c.Updated)
	}
	return v
}

func (s *Service) listConductors(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	detail, _ := api.ToBool(q.Get("detail"))
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	out := []any{}
	for _, c := range store.All[bmstate.Conductor](tx, bmstate.ConductorTable, "id") {
		out = append(out, api.Pick(s.conductorView(r, c, detail), api.Fields(q)))
	}
	api.JSON(w, http.StatusOK, map[string]any{"conductors": out})
	return nil
}

func (s *Service) showConductor(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	name := chi.URLParam(r, "conductor")
	c := store.Get[bmstate.Conductor](tx, bmstate.ConductorTable, name)
	if c == nil {
		return notFoundf("Conductor %s could not be found.", name)
	}
	api.JSON(w, http.StatusOK, api.Pick(s.conductorView(r, c, true), api.Fields(r.URL.Query())))
	return nil
}

// pickConductor is the conductor a new node goes to: the live one with
// the fewest nodes, ties by name; "" when none is registered (a conductor
// adopts ownerless nodes when it starts).
func (s *Service) pickConductor(tx *memdb.Txn, d *driver) string {
	best, bestN := "", 0
	for _, c := range store.All[bmstate.Conductor](tx, bmstate.ConductorTable, "id") {
		if !s.conductorAlive(c) || (len(c.Drivers) > 0 && !slices.Contains(c.Drivers, d.name)) {
			continue
		}
		n := len(store.All[bmstate.Node](tx, bmstate.NodeTable, "conductor", c.ID))
		if best == "" || n < bestN {
			best, bestN = c.ID, n
		}
	}
	return best
}
