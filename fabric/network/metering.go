package network

import (
	"net/http"
	"net/netip"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// L3 metering (Neutron's metering and metering_source_and_destination_fields
// extensions): a label counts the traffic through the external gateways of
// its project's routers, or of every router when shared, that its rules
// match; the nodes' dataplanes count it (dataplane/metering.go) and export
// the counts as Prometheus metrics. As in Neutron, only admins manage
// labels and rules, and neither is updated in place.

type (
	MeteringLabel = netstate.MeteringLabel
	MeteringRule  = netstate.MeteringRule
)

const (
	tMeteringLabels = netstate.TableMeteringLabels
	tMeteringRules  = netstate.TableMeteringRules
)

var (
	labelAttrs = newAttrSpec("", "name description shared tenant_id project_id", "id")
	meterAttrs = newAttrSpec("", "metering_label_id direction excluded remote_ip_prefix source_ip_prefix destination_ip_prefix tenant_id project_id", "id")
)

func labelView(l *MeteringLabel) api.View {
	return map[string]any{"id": l.ID, "name": l.Name, "description": l.Description, "tenant_id": l.Project, "project_id": l.Project, "shared": l.Shared}
}

func meterView(m *MeteringRule) api.View {
	return map[string]any{
		"id": m.ID, "metering_label_id": m.LabelID, "tenant_id": m.Project, "project_id": m.Project,
		"direction": m.Direction, "excluded": m.Excluded, "remote_ip_prefix": nullable(m.Remote),
		"source_ip_prefix": nullable(m.Source), "destination_ip_prefix": nullable(m.Destination),
	}
}

func (s *Service) meteringLabels(*memdb.Txn) api.Collection[MeteringLabel] {
	return api.Collection[MeteringLabel]{Table: tMeteringLabels, One: "metering_label",
		Visible:  func(p *api.Principal, l *MeteringLabel) bool { return l.Shared || p.CanRead(l.Project) },
		View:     func(_ *memdb.Txn, _ *api.Principal, l *MeteringLabel) api.View { return labelView(l) },
		NotFound: func(id string) error { return notFound("metering_label", id) }, Listing: s.listing("metering_labels")}
}

func (s *Service) meteringRules(*memdb.Txn) api.Collection[MeteringRule] {
	return api.Collection[MeteringRule]{Table: tMeteringRules, One: "metering_label_rule",
		Project:  func(m *MeteringRule) string { return m.Project },
		View:     func(_ *memdb.Txn, _ *api.Principal, m *MeteringRule) api.View { return meterView(m) },
		NotFound: func(id string) error { return notFound("metering_label_rule", id) }, Listing: s.listing("metering_label_rules")}
}

func (s *Service) parseLabel(_ *memdb.Txn, p *api.Principal, o api.Object) (MeteringLabel, error) {
	if err := labelAttrs.check(o, http.MethodPost); err != nil {
		return MeteringLabel{}, err
	}
	rd := input(o)
	l := MeteringLabel{ID: api.NewUUID()}
	l.Name = rd.Str("name", "", 255)
	l.Description = rd.Str("description", "", 1024)
	l.Project = readProject(rd, p)
	l.Shared = rd.Bool("shared", false)
	return l, rd.Err
}

func (s *Service) labelCreation() creation[MeteringLabel, MeteringLabel] {
	return creation[MeteringLabel, MeteringLabel]{one: "metering_label", many: "metering_labels", parse: s.parseLabel,
		command: func(_ *memdb.Txn, ls []MeteringLabel) (string, any) {
			return cmdLabelCreate, labelCreateCmd{Labels: ls}
		},
		view: func(_ *memdb.Txn, _ *api.Principal, l *MeteringLabel) api.View { return labelView(l) }}
}

func (s *Service) writableLabel(tx *memdb.Txn, p *api.Principal, id, action string) (*MeteringLabel, error) {
	l, err := s.meteringLabels(tx).Get(tx, p, id)
	if err != nil {
		return nil, err
	}
	if !p.CanWrite(l.Project) {
		return nil, policyDenied(action)
	}
	return l, nil
}

func (s *Service) deleteLabel(w http.ResponseWriter, r *http.Request) error {
	return remove(s, w, r, cmdLabelDelete, "delete_metering_label", s.writableLabel)
}

// readMeterPrefix reads an optional CIDR attribute of a rule, normalized.
func readMeterPrefix(rd *api.Input, f string) string {
	if !rd.Has(f) || rd.IsNull(f) {
		return ""
	}
	v := rd.Str(f, "", 64)
	if rd.Err != nil {
		return ""
	}
	pfx, err := netip.ParsePrefix(v)
	if err != nil || pfx.Addr().Zone() != "" {
		rd.Fail(badInput(f, "'%s' is not a valid IP subnet", v))
		return ""
	}
	return pfx.Masked().String()
}

func (s *Service) parseMeter(tx *memdb.Txn, p *api.Principal, o api.Object) (MeteringRule, error) {
	if err := meterAttrs.check(o, http.MethodPost); err != nil {
		return MeteringRule{}, err
	}
	rd := input(o)
	m := MeteringRule{ID: api.NewUUID()}
	if !rd.Has("metering_label_id") {
		return m, badInput("metering_label_id", "'metering_label_id' is a required property")
	}
	m.LabelID = rd.Str("metering_label_id", "", 64)
	m.Direction = rd.Str("direction", "ingress", 16)
	if rd.Err == nil && m.Direction != "ingress" && m.Direction != "egress" {
		rd.Fail(badInput("direction", "'%s' is not in ['ingress', 'egress']", m.Direction))
	}
	m.Excluded = rd.Bool("excluded", false)
	m.Remote = readMeterPrefix(rd, "remote_ip_prefix")
	m.Source = readMeterPrefix(rd, "source_ip_prefix")
	m.Destination = readMeterPrefix(rd, "destination_ip_prefix")
	if rd.Err != nil {
		return m, rd.Err
	}
	switch {
	case m.Remote != "" && (m.Source != "" || m.Destination != ""):
		return m, badInput("remote_ip_prefix", "Cannot use 'remote-ip-prefix' in conjunction with 'source-ip-prefix' or 'destination-ip-prefix'")
	case m.Remote == "" && m.Source == "" && m.Destination == "":
		return m, badInput("remote_ip_prefix", "You must define at least one of the following parameters 'remote_ip_prefix', or 'source_ip_prefix' or 'destination_ip_prefix'")
	}
	l, err := s.meteringLabels(tx).Get(tx, p, m.LabelID)
	if err != nil {
		return m, err
	}
	// A rule belongs to its label's project, whoever names another.
	m.Project = l.Project
	if proj := readProject(rd, p); rd.Err == nil && proj != l.Project && (rd.Has("tenant_id") || rd.Has("project_id")) {
		return m, badInput("project_id", "a rule belongs to the project of its label (%s)", l.Project)
	}
	return m, rd.Err
}

func (s *Service) meterCreation() creation[MeteringRule, MeteringRule] {
	return creation[MeteringRule, MeteringRule]{one: "metering_label_rule", many: "metering_label_rules", parse: s.parseMeter,
		command: func(_ *memdb.Txn, ms []MeteringRule) (string, any) { return cmdMeterCreate, meterCreateCmd{Rules: ms} },
		view:    func(_ *memdb.Txn, _ *api.Principal, m *MeteringRule) api.View { return meterView(m) }}
}

func (s *Service) writableMeter(tx *memdb.Txn, p *api.Principal, id, action string) (*MeteringRule, error) {
	m, err := s.meteringRules(tx).Get(tx, p, id)
	if err != nil {
		return nil, err
	}
	if !p.CanWrite(m.Project) {
		return nil, policyDenied(action)
	}
	return m, nil
}

func (s *Service) deleteMeter(w http.ResponseWriter, r *http.Request) error {
	return remove(s, w, r, cmdMeterDelete, "delete_metering_label_rule", s.writableMeter)
}

// meteringRoutes are the metering API's routes: admins only, as in
// Neutron.
func (s *Service) meteringRoutes() []api.Route {
	const get, post, del = http.MethodGet, http.MethodPost, http.MethodDelete
	return []api.Route{
		{Method: get, Path: "/v2.0/metering/metering-labels", Access: api.Admin, Rule: "get_metering_label", Handle: list(s, s.meteringLabels)},
		{Method: post, Path: "/v2.0/metering/metering-labels", Access: api.Admin, Rule: "create_metering_label", Handle: create(s, s.labelCreation())},
		{Method: get, Path: "/v2.0/metering/metering-labels/{id}", Access: api.Admin, Rule: "get_metering_label", Handle: show(s, s.meteringLabels)},
		{Method: del, Path: "/v2.0/metering/metering-labels/{id}", Access: api.Admin, Rule: "delete_metering_label", Handle: s.deleteLabel},
		{Method: get, Path: "/v2.0/metering/metering-label-rules", Access: api.Admin, Rule: "get_metering_label_rule", Handle: list(s, s.meteringRules)},
		{Method: post, Path: "/v2.0/metering/metering-label-rules", Access: api.Admin, Rule: "create_metering_label_rule", Handle: create(s, s.meterCreation())},
		{Method: get, Path: "/v2.0/metering/metering-label-rules/{id}", Access: api.Admin, Rule: "get_metering_label_rule", Handle: show(s, s.meteringRules)},
		{Method: del, Path: "/v2.0/metering/metering-label-rules/{id}", Access: api.Admin, Rule: "delete_metering_label_rule", Handle: s.deleteMeter},
	}
}

// meterOverlaps refuses a remote_ip_prefix rule that overlaps another of
// its label with the same direction and exclusion, as Neutron does.
func meterOverlaps(tx *memdb.Txn, m *MeteringRule) error {
	if m.Remote == "" {
		return nil
	}
	mine, err := netip.ParsePrefix(m.Remote)
	if err != nil {
		return badInput("remote_ip_prefix", "'%s' is not a valid IP subnet", m.Remote)
	}
	for _, o := range store.All[MeteringRule](tx, tMeteringRules, "label", m.LabelID) {
		if o.Direction != m.Direction || o.Excluded != m.Excluded || o.Remote == "" {
			continue
		}
		if op, err := netip.ParsePrefix(o.Remote); err == nil && op.Overlaps(mine) {
			return store.Fault(store.KindConflict, "MeteringLabelRuleOverlaps", "Metering label rule with remote_ip_prefix %s overlaps another.", m.Remote)
		}
	}
	return nil
}
