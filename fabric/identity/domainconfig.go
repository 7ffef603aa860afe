package identity

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Domain-specific configuration is Keystone's /v3/domains/{id}/config:
// per-domain values of the [identity] and [ldap] options, which Keystone
// reads to back a domain with its own identity driver. Rackstack has one
// identity backend (the replicated state) and no LDAP driver, so, as a
// Keystone with domain_specific_drivers_enabled off, it keeps and serves
// a domain's configuration and is changed by none of it. Only Keystone's
// listed options are accepted (403 naming the group or option
// otherwise); the LDAP password is kept sealed, as credential blobs are,
// and never shown.

// DomainConfig is one domain's configuration; its id is the domain's.
// Values are kept as the JSON they were given in, so a number or a list
// comes back as it went in.
type DomainConfig struct {
	ID     string                                `json:"id"`
	Groups map[string]map[string]json.RawMessage `json:"groups"`
}

const (
	tDomainConfigs  = "domain_configs"
	cmdDomainConfig = "identity.domain.config"
)

// domainConfigOptions are the options a domain may set, by group, with
// the default each has here (Keystone's defaults; "sql" is Keystone's
// name for the built-in backend, which is what every domain uses).
var domainConfigOptions = map[string]map[string]any{
	"identity": {"driver": "sql", "list_limit": nil},
	"ldap": {
		"url": "ldap://localhost", "user": nil, "suffix": "cn=example,cn=com", "query_scope": "one", "page_size": 0,
		"alias_dereferencing": "default", "debug_level": nil, "chase_referrals": nil,
		"user_tree_dn": nil, "user_filter": nil, "user_objectclass": "inetOrgPerson",
		"user_id_attribute": "cn", "user_name_attribute": "sn", "user_mail_attribute": "mail",
		"user_description_attribute": "description", "user_pass_attribute": "userPassword",
		"user_enabled_attribute": "enabled", "user_enabled_invert": false,
		"user_enabled_mask": 0, "user_enabled_default": "True",
		"user_attribute_ignore": []string{"default_project_id"}, "user_default_project_id_attribute": nil,
		"user_enabled_emulation": false, "user_enabled_emulation_dn": nil,
		"user_enabled_emulation_use_group_config": false,
		"user_additional_attribute_mapping":       []string{}, "group_tree_dn": nil,
		"group_filter": nil, "group_objectclass": "groupOfNames", "group_id_attribute": "cn",
		"group_name_attribute": "ou", "group_members_are_ids": false,
		"group_member_attribute": "member", "group_desc_attribute": "description",
		"group_attribute_ignore": []string{}, "group_additional_attribute_mapping": []string{},
		"tls_cacertfile": nil, "tls_cacertdir": nil, "use_tls": false, "tls_req_cert": "demand",
		"use_pool": true, "pool_size": 10, "pool_retry_max": 3, "pool_retry_delay": 0.1,
		"pool_connection_timeout": -1, "pool_connection_lifetime": 600,
		"use_auth_pool": true, "auth_pool_size": 100, "auth_pool_connection_lifetime": 60,
	},
}

// sensitiveOptions may be set but are never shown, nor have a default.
var sensitiveOptions = map[string]map[string]bool{"identity": {}, "ldap": {"password": true}}

func (s *Service) domainConfigRoutes() []api.Route {
	const admin = api.Admin
	base := "/v3/domains/{id}/config"
	var routes []api.Route
	for _, p := range []string{base, base + "/{group}", base + "/{group}/{option}"} {
		routes = append(routes,
			route("GET", p, admin, "identity:get_domain_config", s.showDomainConfig),
			route("PATCH", p, admin, "identity:update_domain_config", s.updateDomainConfig),
			route("DELETE", p, admin, "identity:delete_domain_config", s.deleteDomainConfig),
		)
	}
	return append(routes,
		route("PUT", base, admin, "identity:create_domain_config", s.createDomainConfig),
		route("GET", "/v3/domains/config/default", admin, "identity:get_domain_config_default", s.showDomainConfigDefault),
		route("GET", "/v3/domains/config/{group}/default", admin, "identity:get_domain_config_default", s.showDomainConfigDefault),
		route("GET", "/v3/domains/config/{group}/{option}/default", admin, "identity:get_domain_config_default", s.showDomainConfigDefault),
	)
}

func invalidConfig(format string, args ...any) error {
	return api.Errorf(http.StatusForbidden, "Invalid domain specific configuration: "+format+".", args...)
}

func configNotFound(domainID, what string) error {
	return store.NotFoundf("Could not find %s in domain configuration for domain %s.", what, domainID)
}

// checkGroupOption refuses a group or option Keystone does not let a
// domain set (403, as Keystone's InvalidDomainConfig).
func checkGroupOption(group, option string) error {
	if group == "" {
		return nil
	}
	opts, ok := domainConfigOptions[group]
	if !ok {
		return invalidConfig("Group %s is not supported for domain specific configurations", group)
	}
	if _, ok := opts[option]; option != "" && !ok && !sensitiveOptions[group][option] {
		return invalidConfig("Option %s in group %s is not supported for domain specific configurations", option, group)
	}
	return nil
}

// readDomainConfig reads the request's {"config": {...}}: groups of
// options, each a non-empty object, every option one a domain may set.
// When option is named, the body holds that one option ({"config":
// {"<option>": value}}) and is read as one group holding it.
func readDomainConfig(r *http.Request, group, option string) (map[string]map[string]json.RawMessage, error) {
	top, err := topObject(r, "config")
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(top["config"])
	if err != nil {
		return nil, err
	}
	var cfg map[string]json.RawMessage
	if option != "" {
		cfg = map[string]json.RawMessage{group: raw}
	} else if err := json.Unmarshal(raw, &cfg); err != nil || len(cfg) == 0 {
		return nil, invalidConfig("No options specified")
	}
	out := map[string]map[string]json.RawMessage{}
	for g, graw := range cfg {
		var opts map[string]json.RawMessage
		if err := json.Unmarshal(graw, &opts); err != nil || len(opts) == 0 {
			return nil, invalidConfig("The value of group %s specified in the config should be a dictionary of options", g)
		}
		for o, v := range opts {
			if err := checkGroupOption(g, o); err != nil {
				return nil, err
			}
			var c bytes.Buffer
			if err := json.Compact(&c, v); err != nil {
				return nil, err
			}
			opts[o] = c.Bytes()
		}
		out[g] = opts
	}
	if group != "" {
		// A group (or option) route changes that group (or option) only.
		_, hasOption := out[group][option]
		if len(out) != 1 || out[group] == nil || (option != "" && (len(out[group]) != 1 || !hasOption)) {
			if option != "" {
				return nil, invalidConfig("Trying to update option %s in group %s, so that, and only that, option must be specified in the config", option, group)
			}
			return nil, invalidConfig("Trying to update group %s, so that, and only that, group must be specified in the config", group)
		}
	}
	return out, nil
}

// sealSensitive replaces the values of sensitive options by their
// sealed form, bound to the domain, group and option.
func (s *Service) sealSensitive(domainID string, cfg map[string]map[string]json.RawMessage) error {
	for g, opts := range cfg {
		for o, v := range opts {
			if !sensitiveOptions[g][o] {
				continue
			}
			sealed, err := s.sealBlob(domainID+"/"+g+"/"+o, string(v))
			if err != nil {
				return err
			}
			if opts[o], err = json.Marshal(sealed); err != nil {
				return err
			}
		}
	}
	return nil
}

// domainConfigCmd changes one domain's configuration in the state
// machine, so that two changes to different options never lose one:
// "create" replaces it, "update" merges into it (with Group, and
// Option, only an option that is there), "delete" removes it, a group
// or an option of it.
type domainConfigCmd struct {
	DomainID string                                `json:"domain_id"`
	Op       string                                `json:"op"`
	Group    string                                `json:"group,omitempty"`
	Option   string                                `json:"option,omitempty"`
	Groups   map[string]map[string]json.RawMessage `json:"groups,omitempty"`
}

// domainConfigResult says whether the domain had a configuration.
type domainConfigResult struct {
	Existed bool `json:"existed"`
}

func applyDomainConfig(tx *memdb.Txn, c domainConfigCmd) (any, error) {
	if store.Get[Domain](tx, tDomains, c.DomainID) == nil {
		return nil, notFound("Could not find domain: %s.", c.DomainID)
	}
	old := store.Get[DomainConfig](tx, tDomainConfigs, c.DomainID)
	res := domainConfigResult{Existed: old != nil}
	cur := map[string]map[string]json.RawMessage{}
	if old != nil {
		for g, opts := range old.Groups {
			cur[g] = map[string]json.RawMessage{}
			for o, v := range opts {
				cur[g][o] = v
			}
		}
	}
	if c.Group != "" && c.Op != "create" {
		if _, ok := cur[c.Group]; !ok {
			return nil, configNotFound(c.DomainID, "group "+c.Group)
		}
		if _, ok := cur[c.Group][c.Option]; c.Option != "" && !ok {
			return nil, configNotFound(c.DomainID, "option "+c.Option+" in group "+c.Group)
		}
	}
	switch c.Op {
	case "create":
		cur = c.Groups
	case "update":
		for g, opts := range c.Groups {
			if cur[g] == nil {
				cur[g] = map[string]json.RawMessage{}
			}
			for o, v := range opts {
				cur[g][o] = v
			}
		}
	case "delete":
		switch {
		case c.Option != "":
			delete(cur[c.Group], c.Option)
			if len(cur[c.Group]) == 0 {
				delete(cur, c.Group)
			}
		case c.Group != "":
			delete(cur, c.Group)
		default:
			cur = nil
		}
	default:
		return nil, invalid("%s: unknown op %q", cmdDomainConfig, c.Op)
	}
	if len(cur) == 0 {
		if old != nil {
			return res, tx.Delete(tDomainConfigs, old)
		}
		return res, nil
	}
	return res, tx.Insert(tDomainConfigs, &DomainConfig{ID: c.DomainID, Groups: cur})
}

// domainConfigView is what may be shown of a configuration: all but
// the sensitive options.
func domainConfigView(groups map[string]map[string]json.RawMessage) map[string]any {
	out := map[string]any{}
	for g, opts := range groups {
		shown := map[string]json.RawMessage{}
		for o, v := range opts {
			if !sensitiveOptions[g][o] {
				shown[o] = v
			}
		}
		if len(shown) > 0 {
			out[g] = shown
		}
	}
	return out
}

// proposeDomainConfig applies c and answers with the domain's whole
// configuration as it then is, in status (or, for a create, 201 when
// the domain had none).
func (s *Service) proposeDomainConfig(w http.ResponseWriter, r *http.Request, c domainConfigCmd, status int) error {
	var res domainConfigResult
	tx, err := api.Propose(r.Context(), s.cfg.Repl, cmdDomainConfig, c, &res)
	if err != nil {
		return err
	}
	if c.Op == "delete" {
		return noContent(w)
	}
	if c.Op == "create" && !res.Existed {
		status = http.StatusCreated
	}
	var groups map[string]map[string]json.RawMessage
	if dc := store.Get[DomainConfig](tx, tDomainConfigs, c.DomainID); dc != nil {
		groups = dc.Groups
	}
	api.JSON(w, status, map[string]any{"config": domainConfigView(groups)})
	return nil
}

func (s *Service) createDomainConfig(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	groups, err := readDomainConfig(r, "", "")
	if err != nil {
		return err
	}
	if err := s.sealSensitive(id, groups); err != nil {
		return err
	}
	return s.proposeDomainConfig(w, r, domainConfigCmd{DomainID: id, Op: "create", Groups: groups}, http.StatusOK)
}

func (s *Service) updateDomainConfig(w http.ResponseWriter, r *http.Request) error {
	id, group, option := chi.URLParam(r, "id"), chi.URLParam(r, "group"), chi.URLParam(r, "option")
	if err := checkGroupOption(group, option); err != nil {
		return err
	}
	groups, err := readDomainConfig(r, group, option)
	if err != nil {
		return err
	}
	if err := s.sealSensitive(id, groups); err != nil {
		return err
	}
	return s.proposeDomainConfig(w, r, domainConfigCmd{DomainID: id, Op: "update", Group: group, Option: option, Groups: groups}, http.StatusOK)
}

func (s *Service) deleteDomainConfig(w http.ResponseWriter, r *http.Request) error {
	id, group, option := chi.URLParam(r, "id"), chi.URLParam(r, "group"), chi.URLParam(r, "option")
	if err := checkGroupOption(group, option); err != nil {
		return err
	}
	return s.proposeDomainConfig(w, r, domainConfigCmd{DomainID: id, Op: "delete", Group: group, Option: option}, http.StatusNoContent)
}

// showDomainConfig shows a domain's configuration, one group of it
// ({"config": {"<group>": {...}}}) or one option ({"config":
// {"<option>": value}}); a sensitive option is never shown (404).
func (s *Service) showDomainConfig(w http.ResponseWriter, r *http.Request) error {
	id, group, option := chi.URLParam(r, "id"), chi.URLParam(r, "group"), chi.URLParam(r, "option")
	if err := checkGroupOption(group, option); err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	if store.Get[Domain](tx, tDomains, id) == nil {
		return notFoundErr("domain", id)
	}
	var view map[string]any
	if dc := store.Get[DomainConfig](tx, tDomainConfigs, id); dc != nil {
		view = domainConfigView(dc.Groups)
	}
	switch {
	case option != "":
		g, _ := view[group].(map[string]json.RawMessage)
		v, ok := g[option]
		if !ok {
			return configNotFound(id, "option "+option+" in group "+group)
		}
		api.JSON(w, http.StatusOK, map[string]any{"config": map[string]any{option: v}})
	case group != "":
		g, ok := view[group]
		if !ok {
			return configNotFound(id, "group "+group)
		}
		api.JSON(w, http.StatusOK, map[string]any{"config": map[string]any{group: g}})
	default:
		if len(view) == 0 {
			return configNotFound(id, "any options")
		}
		api.JSON(w, http.StatusOK, map[string]any{"config": view})
	}
	return nil
}

// showDomainConfigDefault shows the defaults a domain's configuration
// starts from: all groups, one group, or one option.
func (s *Service) showDomainConfigDefault(w http.ResponseWriter, r *http.Request) error {
	group, option := chi.URLParam(r, "group"), chi.URLParam(r, "option")
	if err := checkGroupOption(group, option); err != nil {
		return err
	}
	if option != "" {
		v, ok := domainConfigOptions[group][option]
		if !ok {
			return invalidConfig("Reading the default for option %s in group %s is not supported", option, group)
		}
		api.JSON(w, http.StatusOK, map[string]any{"config": map[string]any{option: v}})
		return nil
	}
	out := map[string]any{}
	for g, opts := range domainConfigOptions {
		if group == "" || g == group {
			out[g] = opts
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"config": out})
	return nil
}
