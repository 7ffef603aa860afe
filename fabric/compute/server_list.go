package compute

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Server lists: Nova's filters, sort keys and paging.

// listParams are the query parameters server list takes (unknown ones are
// ignored before 2.75 and refused from it).
var listParams = map[string]bool{
	"name": true, "status": true, "image": true, "flavor": true, "changes-since": true, "changes-before": true,
	"limit": true, "marker": true, "sort_key": true, "sort_dir": true, "reservation_id": true, "ip": true, "ip6": true,
	"all_tenants": true, "host": true, "node": true, "project_id": true, "tenant_id": true, "availability_zone": true,
	"key_name": true, "vm_state": true, "task_state": true, "power_state": true, "locked": true, "deleted": true,
	"uuid": true, "user_id": true, "config_drive": true, "access_ip_v4": true, "access_ip_v6": true, "description": true,
	"hostname": true, "launched_at": true, "terminated_at": true, "created_at": true, "display_name": true,
	"display_description": true, "tags": true, "tags-any": true, "not-tags": true, "not-tags-any": true,
	"soft_deleted": true, "progress": true, "launch_index": true, "kernel_id": true, "ramdisk_id": true,
	"root_device_name": true, "block_device_mapping": true, "info_cache": true, "security_groups": true,
	"pci_devices": true, "key_pair": true, "cleaned": true, "locked_by": true, "shutdown_terminate": true,
	"vm_mode": true, "architecture": true, "auto_disk_config": true, "os_type": true, "config_drive_id": true,
	"default_ephemeral_device": true, "default_swap_device": true, "ephemeral_key_uuid": true, "flavor_id": true,
	"image_ref": true, "instance_type_id": true, "metadata": true, "system_metadata": true, "updated_at": true,
	"launched_on": true, "ephemeral_gb": true, "memory_mb": true, "root_gb": true, "vcpus": true, "services": true,
	"compute_host": true, "fields": true,
}

// serverStatuses are the statuses a list may filter on.
var serverStatuses = []string{"ACTIVE", "BUILD", "SHUTOFF", "PAUSED", "SUSPENDED", "ERROR", "REBOOT", "HARD_REBOOT", "DELETED",
	"SOFT_DELETED", "RESIZE", "VERIFY_RESIZE", "REVERT_RESIZE", "MIGRATING", "RESCUE", "SHELVED", "SHELVED_OFFLOADED",
	"UNKNOWN", "PASSWORD", "REBUILD"}

// serverSortKeys are the sort_key values of a server list.
var serverSortKeys = map[string]func(*Server) any{
	"created_at": func(sv *Server) any { return sv.Created.Unix() }, "updated_at": func(sv *Server) any { return sv.Updated.Unix() },
	"display_name": func(sv *Server) any { return sv.Name }, "uuid": func(sv *Server) any { return sv.ID },
	"vm_state": func(sv *Server) any { return sv.VMState }, "host": func(sv *Server) any { return sv.Host },
	"launched_at": func(sv *Server) any { return sv.LaunchedAt.Unix() }, "key_name": func(sv *Server) any { return sv.KeyName },
	"availability_zone": func(sv *Server) any { return sv.AZ }, "project_id": func(sv *Server) any { return sv.Project },
	"user_id": func(sv *Server) any { return sv.UserID }, "memory_mb": func(sv *Server) any { return sv.Flavor.RAM },
	"vcpus": func(sv *Server) any { return sv.Flavor.VCPUs }, "root_gb": func(sv *Server) any { return sv.Flavor.Disk },
	"power_state": func(sv *Server) any { return sv.PowerState }, "task_state": func(sv *Server) any { return sv.TaskState },
}

// serverQuery is a server list's query, read and checked.
type serverQuery struct {
	q          url.Values
	admin      bool
	allTenants bool
	name       *regexp.Regexp
	statuses   []string
	since      time.Time
	before     time.Time
	sortKey    func(*Server) any
	desc       bool
	// ip and ip6 match the start of a server's IPv4 and IPv6 addresses.
	ip, ip6 *regexp.Regexp
	// locked (2.73) keeps the servers locked or not.
	locked *bool
	// tags are the tag filters (2.26).
	tags *tagQuery
	// from83: the state, time and owner filters are every user's (2.83),
	// not admins' only.
	from83 bool
}

func readServerQuery(r *http.Request) (*serverQuery, error) {
	p := principal(r)
	q := r.URL.Query()
	sq := &serverQuery{q: q, admin: p.IsAdmin(), from83: atLeast(r, 83)}
	if atLeast(r, 75) {
		for k := range q {
			if !listParams[k] {
				return nil, badRequest("Invalid input for query parameters %s. Value: %s. Additional properties are not allowed ('%s' was unexpected)", k, q.Get(k), k)
			}
		}
	}
	if v, ok := q["all_tenants"]; ok {
		b, isBool := api.ToBool(v[0])
		sq.allTenants = v[0] == "" || (isBool && b)
		if sq.allTenants && !p.IsAdmin() {
			return nil, policyDenied("os_compute_api:servers:index:get_all_tenants")
		}
	}
	if n := q.Get("name"); n != "" {
		sq.name = pattern(n, false)
	}
	// ip6 is for everyone from 2.5, for admins always, as Nova filters
	// the options a caller may use.
	if v := q.Get("ip"); v != "" {
		sq.ip = pattern(v, true)
	}
	if v := q.Get("ip6"); v != "" && (p.IsAdmin() || atLeast(r, 5)) {
		sq.ip6 = pattern(v, true)
	}
	for _, st := range q["status"] {
		st = strings.ToUpper(st)
		if !slices.Contains(serverStatuses, st) && atLeast(r, 38) {
			return nil, badRequest("Invalid status value")
		}
		sq.statuses = append(sq.statuses, st)
	}
	if v, ok := q["locked"]; ok && atLeast(r, 73) {
		b, isBool := api.ToBool(v[0])
		if !isBool {
			return nil, badRequest("Invalid input for query parameters locked. Value: %s. Unrecognized value '%s', acceptable values are: '0', '1', 'false', 'no', 'off', 'on', 'true', 'yes'", v[0], v[0])
		}
		sq.locked = &b
	}
	sq.tags = readTagQuery(r)
	if err := sq.readTimes(r); err != nil {
		return nil, err
	}
	return sq, sq.readSort()
}

// readTimes reads changes-since and (2.66) changes-before.
func (sq *serverQuery) readTimes(r *http.Request) (err error) {
	sq.since, sq.before, err = changeWindow(r, 1)
	return err
}

// changeWindow reads changes-since (from microversion 2.sinceFrom) and
// changes-before (2.66): the window of updates a list asks for; a zero
// time is no bound.
func changeWindow(r *http.Request, sinceFrom int) (since, before time.Time, err error) {
	q := r.URL.Query()
	for _, tf := range []struct {
		name string
		dst  *time.Time
		ok   bool
	}{{"changes-since", &since, atLeast(r, sinceFrom)}, {"changes-before", &before, atLeast(r, 66)}} {
		if v := q.Get(tf.name); v != "" && tf.ok {
			t, err := parseTime(v)
			if err != nil {
				return since, before, badRequest("Invalid input for query parameters %s. Value: %s. '%s' is not a 'date-time'", tf.name, v, v)
			}
			*tf.dst = t
		}
	}
	if !since.IsZero() && !before.IsZero() && before.Before(since) {
		return since, before, badRequest("The value of changes-since must be less than or equal to changes-before.")
	}
	return since, before, nil
}

// inWindow reports whether t is within since..before (zero: no bound).
func inWindow(t, since, before time.Time) bool {
	return (since.IsZero() || !t.Before(since)) && (before.IsZero() || !t.After(before))
}

// readSort reads sort_key (default created_at) and sort_dir (default
// desc).
func (sq *serverQuery) readSort() error {
	key, dir := sq.q.Get("sort_key"), sq.q.Get("sort_dir")
	if key == "" {
		key = "created_at"
	}
	if dir == "" {
		dir = "desc"
	}
	sq.sortKey, sq.desc = serverSortKeys[key], dir == "desc"
	if sq.sortKey == nil || (dir != "asc" && dir != "desc") {
		return badRequest("Invalid input for query parameters sort_key. Value: %s.", key)
	}
	return nil
}

// project is whose servers the list reads: the caller's, or with
// all_tenants every project's ("") or the one asked for.
func (sq *serverQuery) project(p *api.Principal) string {
	if !sq.allTenants {
		return p.ProjectID
	}
	if v := sq.q.Get("project_id"); v != "" {
		return v
	}
	return sq.q.Get("tenant_id")
}

// matches reports whether a server passes the filters; those on hosts,
// states and users are for admins only.
func (sq *serverQuery) matches(sv *Server) bool {
	q := sq.q
	eq := func(param, value string) bool { return q.Get(param) == "" || q.Get(param) == value }
	switch {
	case sq.name != nil && !sq.name.MatchString(sv.Name):
	case len(sq.statuses) > 0 && !slices.Contains(sq.statuses, sv.Status):
	case q.Get("flavor") != "" && sv.Flavor.ID != refID(q.Get("flavor")):
	case q.Get("image") != "" && sv.ImageID != refID(q.Get("image")):
	case !inWindow(sv.Updated, sq.since, sq.before):
	case sq.locked != nil && sv.Locked != *sq.locked:
	case sq.tags != nil && !sq.tags.matches(sv.Tags):
	case !eq("reservation_id", sv.ReservationID):
	case sq.admin && (!eq("host", sv.Host) || !eq("node", hypervisorHostname(sv))):
	case (sq.admin || sq.from83) && !sq.matchesStates(sv):
	default:
		return true
	}
	return false
}

// matchesStates applies the filters Nova keeps for admins and, from
// 2.83, lets every user have: vm_state, task_state and user_id exact,
// the others as Nova's database filters them, an unanchored regular
// expression on the column's text (a datetime "YYYY-MM-DD HH:MM:SS",
// config_drive "True", integers in decimal); terminated_at is null for
// every server a list shows, so it matches none.
func (sq *serverQuery) matchesStates(sv *Server) bool {
	q := sq.q
	eq := func(param, value string) bool { return q.Get(param) == "" || q.Get(param) == value }
	re := func(param, text string) bool {
		return q.Get(param) == "" || pattern(q.Get(param), false).MatchString(text)
	}
	dbTime := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	}
	return eq("vm_state", sv.VMState) && eq("task_state", sv.TaskState) && eq("user_id", sv.UserID) &&
		re("key_name", sv.KeyName) && re("availability_zone", sv.AZ) && re("config_drive", "True") &&
		re("created_at", dbTime(sv.Created)) && (q.Get("launched_at") == "" || !sv.LaunchedAt.IsZero() && re("launched_at", dbTime(sv.LaunchedAt))) &&
		q.Get("terminated_at") == "" && re("power_state", strconv.Itoa(sv.PowerState)) && re("progress", "0")
}

// pattern compiles a filter's regular expression (Python's re.match when
// anchored: at the start of the value); one that is not a valid
// expression matches itself literally.
func pattern(expr string, anchored bool) *regexp.Regexp {
	if _, err := regexp.Compile(expr); err != nil {
		expr = regexp.QuoteMeta(expr)
	}
	if anchored {
		expr = "^(?:" + expr + ")"
	}
	return regexp.MustCompile(expr) // valid: checked or quoted above
}

// matchesIP reports whether one of a server's addresses (as addresses
// shows them) passes the ip or ip6 filter, as Nova's _ip_filter does.
func (sq *serverQuery) matchesIP(addresses map[string]any) bool {
	for _, list := range addresses {
		for _, a := range list.([]any) {
			m := a.(map[string]any)
			addr, _ := m["addr"].(string)
			re := sq.ip
			if m["version"] == 6 {
				re = sq.ip6
			}
			if re != nil && re.MatchString(addr) {
				return true
			}
		}
	}
	return false
}

func (s *Service) listServers(detail bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		sq, err := readServerQuery(r)
		if err != nil {
			return err
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		p := principal(r)
		var all []*Server
		if project := sq.project(p); project == "" {
			all = store.All[Server](tx, tServers, "id")
		} else {
			all = store.All[Server](tx, tServers, "project", project)
		}
		var rows []*Server
		for _, sv := range all {
			if sv.Hidden || !p.CanRead(sv.Project) || !sq.matches(sv) {
				continue
			}
			if (sq.ip != nil || sq.ip6 != nil) && !sq.matchesIP(s.addresses(r.Context(), sv)) {
				continue
			}
			rows = append(rows, sv)
		}
		sortRows(rows, sq.sortKey, func(sv *Server) string { return sv.ID }, sq.desc)
		ids := make([]string, len(rows))
		for i, sv := range rows {
			ids[i] = sv.ID
		}
		from, to, next, err := page(sq.q, ids)
		if err != nil {
			return err
		}
		out := make([]any, 0, to-from)
		for _, sv := range rows[from:to] {
			if detail {
				// No tx: lists leave out the server groups (2.71), but
				// show the volumes.
				v := s.serverView(r, nil, sv, false)
				v["os-extended-volumes:volumes_attached"] = volumesAttached(r, tx, sv.ID)
				out = append(out, v)
			} else {
				out = append(out, map[string]any{"id": sv.ID, "name": sv.Name, "links": s.links(r, "servers", sv.ID)})
			}
		}
		api.JSON(w, http.StatusOK, s.paged(r, "servers", out, next))
		return nil
	}
}

func parseTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999", "2006-01-02T15:04:05Z0700", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("parse time %q", v)
}
