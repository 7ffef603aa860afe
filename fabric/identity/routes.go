package identity

import (
	"encoding/json"
	"net/http"

	"github.com/rackstack/rackstack/fabric/api"
)

// Handler serves Keystone under the prefix the caller strips (/identity):
// "/" is version discovery, "/v3/..." the API.
func (s *Service) Handler() http.Handler {
	return api.Routes{Auth: s, Errors: writeError, Service: "identity", Denied: func(string) error { return errForbidden }}.Router(s.routes())
}

// routes is Keystone's API and its policy: who may call what. Checks that
// depend on the resource (a user reading itself, a project the caller
// holds a role on, a credential of its own) are in the handlers.
func (s *Service) routes() []api.Route {
	const (
		public = api.Public
		authed = api.Authenticated
		admin  = api.Admin
	)
	routes := []api.Route{
		route("GET", "/", public, "", s.versions),
		route("GET", "/v3", public, "", s.version),
		route("GET", "/v3/", public, "", s.version),
		route("POST", "/v3/auth/tokens", public, "identity:issue_token", s.postToken),
		// Like Keystone, a password change authenticates with the original
		// password, so a user whose token is gone can still change it.
		route("POST", "/v3/users/{id}/password", public, "identity:change_password", s.changePassword),
		// The signature is the authentication (ec2tokens.go).
		route("POST", "/v3/ec2tokens", public, "", s.postEC2Token),
		route("POST", "/v3/s3tokens", public, "", s.postS3Token),

		route("GET", "/v3/auth/tokens", authed, "identity:validate_token", s.getToken),
		route("HEAD", "/v3/auth/tokens", authed, "identity:check_token", s.headToken),
		route("DELETE", "/v3/auth/tokens", authed, "identity:revoke_token", s.deleteToken),
		route("GET", "/v3/auth/catalog", authed, "identity:get_auth_catalog", s.authCatalog),
		route("GET", "/v3/auth/projects", authed, "identity:get_auth_projects", s.authProjects),
		route("GET", "/v3/auth/domains", authed, "identity:get_auth_domains", s.authDomains),
		route("GET", "/v3/auth/system", authed, "identity:get_auth_system", s.authSystem),

		route("GET", "/v3/domains", authed, "identity:list_domains", list(s, s.domains)),
		route("POST", "/v3/domains", admin, "identity:create_domain", create(s, s.domains, readDomain)),
		route("GET", "/v3/domains/{id}", authed, "identity:get_domain", show(s, s.domains)),
		route("PATCH", "/v3/domains/{id}", admin, "identity:update_domain", update(s, s.domains, readDomain)),
		route("DELETE", "/v3/domains/{id}", admin, "identity:delete_domain", s.deleteRow(tDomains)),

		route("GET", "/v3/projects", admin, "identity:list_projects", s.projectsOrDomains(list(s, s.projects))),
		route("POST", "/v3/projects", admin, "identity:create_project", s.createProjectOrDomain(create(s, s.projects, readProject))),
		route("GET", "/v3/projects/{id}", authed, "identity:get_project", s.onDomainProject(s.showProject, s.showDomainProject)),
		route("PATCH", "/v3/projects/{id}", admin, "identity:update_project", s.onDomainProject(update(s, s.projects, readProject), s.updateDomainProject)),
		route("DELETE", "/v3/projects/{id}", admin, "identity:delete_project", s.onDomainProject(s.deleteRow(tProjects), s.deleteDomainProject)),
		route("GET", "/v3/projects/{id}/tags", authed, "identity:list_project_tags", s.listTags),
		route("PUT", "/v3/projects/{id}/tags", admin, "identity:update_project_tags", s.replaceTags),
		route("DELETE", "/v3/projects/{id}/tags", admin, "identity:delete_project_tags", s.tag("clear")),
		route("GET", "/v3/projects/{id}/tags/{tag}", authed, "identity:get_project_tag", s.checkTag),
		route("HEAD", "/v3/projects/{id}/tags/{tag}", authed, "identity:get_project_tag", s.checkTag),
		route("PUT", "/v3/projects/{id}/tags/{tag}", admin, "identity:create_project_tag", s.tag("add")),
		route("DELETE", "/v3/projects/{id}/tags/{tag}", admin, "identity:delete_project_tag", s.tag("remove")),

		route("GET", "/v3/users", admin, "identity:list_users", list(s, s.users)),
		route("POST", "/v3/users", admin, "identity:create_user", s.createUser),
		route("GET", "/v3/users/{id}", authed, "identity:get_user", selfOrAdmin(show(s, s.users))),
		route("PATCH", "/v3/users/{id}", admin, "identity:update_user", s.updateUser),
		route("DELETE", "/v3/users/{id}", admin, "identity:delete_user", s.deleteRow(tUsers)),
		route("GET", "/v3/users/{id}/projects", authed, "identity:list_user_projects", selfOrAdmin(s.listUserProjects)),
		route("GET", "/v3/users/{id}/groups", authed, "identity:list_groups_for_user", selfOrAdmin(s.listUserGroups)),
		route("GET", "/v3/users/{id}/credentials/OS-EC2", authed, "identity:ec2_list_credentials", selfOrAdmin(s.listEC2)),
		route("POST", "/v3/users/{id}/credentials/OS-EC2", authed, "identity:ec2_create_credential", selfOrAdmin(s.createEC2)),
		route("GET", "/v3/users/{id}/credentials/OS-EC2/{access}", authed, "identity:ec2_get_credential", selfOrAdmin(s.showEC2)),
		route("DELETE", "/v3/users/{id}/credentials/OS-EC2/{access}", authed, "identity:ec2_delete_credential", selfOrAdmin(s.deleteEC2)),

		// Application credentials: only the user makes its own (as
		// Keystone, even an admin may not make one for another user).
		route("GET", "/v3/users/{id}/application_credentials", authed, "identity:list_application_credentials", selfOrAdmin(s.listAppCreds)),
		route("POST", "/v3/users/{id}/application_credentials", authed, "identity:create_application_credential", s.createAppCred),
		route("GET", "/v3/users/{id}/application_credentials/{cred}", authed, "identity:get_application_credential", selfOrAdmin(s.showAppCred)),
		route("DELETE", "/v3/users/{id}/application_credentials/{cred}", authed, "identity:delete_application_credential", selfOrAdmin(s.deleteAppCred)),
		route("GET", "/v3/users/{id}/access_rules", authed, "identity:list_access_rules", selfOrAdmin(s.listAccessRules)),
		route("GET", "/v3/users/{id}/access_rules/{rule}", authed, "identity:get_access_rule", selfOrAdmin(s.showAccessRule)),
		route("DELETE", "/v3/users/{id}/access_rules/{rule}", authed, "identity:delete_access_rule", selfOrAdmin(s.deleteAccessRule)),

		// Trusts (OS-TRUST): who may see or delete one (its trustor, its
		// trustee, an admin) is the handlers' check.
		route("POST", "/v3/OS-TRUST/trusts", authed, "identity:create_trust", s.createTrust),
		route("GET", "/v3/OS-TRUST/trusts", authed, "identity:list_trusts", s.listTrusts),
		route("GET", "/v3/OS-TRUST/trusts/", authed, "identity:list_trusts", s.listTrusts),
		route("GET", "/v3/OS-TRUST/trusts/{id}", authed, "identity:get_trust", s.showTrust),
		route("HEAD", "/v3/OS-TRUST/trusts/{id}", authed, "identity:get_trust", s.showTrust),
		route("DELETE", "/v3/OS-TRUST/trusts/{id}", authed, "identity:delete_trust", s.deleteTrust),
		route("GET", "/v3/OS-TRUST/trusts/{id}/roles", authed, "identity:list_roles_for_trust", s.listTrustRoles),
		route("HEAD", "/v3/OS-TRUST/trusts/{id}/roles", authed, "identity:list_roles_for_trust", s.listTrustRoles),
		route("GET", "/v3/OS-TRUST/trusts/{id}/roles/{role}", authed, "identity:get_role_for_trust", s.showTrustRole),
		route("HEAD", "/v3/OS-TRUST/trusts/{id}/roles/{role}", authed, "identity:get_role_for_trust", s.showTrustRole),

		route("GET", "/v3/roles", authed, "identity:list_roles", s.listRoles),
		route("POST", "/v3/roles", admin, "identity:create_role", create(s, s.roles, readRole)),
		route("GET", "/v3/roles/{id}", authed, "identity:get_role", show(s, s.roles)),
		route("PATCH", "/v3/roles/{id}", admin, "identity:update_role", update(s, s.roles, readRole)),
		route("DELETE", "/v3/roles/{id}", admin, "identity:delete_role", s.deleteRow(tRoles)),
		route("GET", "/v3/roles/{prior}/implies", admin, "identity:list_implied_roles", s.listImplied),
		route("PUT", "/v3/roles/{prior}/implies/{implied}", admin, "identity:create_implied_role", s.putImplication),
		route("GET", "/v3/roles/{prior}/implies/{implied}", admin, "identity:get_implied_role", s.getImplication),
		route("HEAD", "/v3/roles/{prior}/implies/{implied}", admin, "identity:check_implied_role", s.getImplication),
		route("DELETE", "/v3/roles/{prior}/implies/{implied}", admin, "identity:delete_implied_role", s.deleteImplication),
		route("GET", "/v3/role_inferences", admin, "identity:list_role_inference_rules", s.listInferences),
		// Non-admins may list their own assignments (the handler checks).
		route("GET", "/v3/role_assignments", authed, "identity:list_role_assignments", s.listAssignments),

		route("GET", "/v3/groups", admin, "identity:list_groups", list(s, s.groups)),
		route("POST", "/v3/groups", admin, "identity:create_group", create(s, s.groups, readGroup)),
		route("GET", "/v3/groups/{id}", admin, "identity:get_group", show(s, s.groups)),
		route("PATCH", "/v3/groups/{id}", admin, "identity:update_group", update(s, s.groups, readGroup)),
		route("DELETE", "/v3/groups/{id}", admin, "identity:delete_group", s.deleteRow(tGroups)),
		route("GET", "/v3/groups/{id}/users", admin, "identity:list_users_in_group", s.listGroupUsers),
		route("PUT", "/v3/groups/{id}/users/{user}", admin, "identity:add_user_to_group", s.membership(true)),
		route("DELETE", "/v3/groups/{id}/users/{user}", admin, "identity:remove_user_from_group", s.membership(false)),
		route("HEAD", "/v3/groups/{id}/users/{user}", admin, "identity:check_user_in_group", s.checkMembership),
		route("GET", "/v3/groups/{id}/users/{user}", admin, "identity:check_user_in_group", s.checkMembership),

		route("GET", "/v3/regions", authed, "identity:list_regions", list(s, s.regions)),
		route("POST", "/v3/regions", admin, "identity:create_region", create(s, s.regions, readRegion)),
		route("PUT", "/v3/regions/{id}", admin, "identity:create_region", create(s, s.regions, readRegion)),
		route("GET", "/v3/regions/{id}", authed, "identity:get_region", show(s, s.regions)),
		route("PATCH", "/v3/regions/{id}", admin, "identity:update_region", update(s, s.regions, readRegion)),
		route("DELETE", "/v3/regions/{id}", admin, "identity:delete_region", s.deleteRow(tRegions)),

		route("GET", "/v3/services", admin, "identity:list_services", list(s, s.services)),
		route("POST", "/v3/services", admin, "identity:create_service", create(s, s.services, readService)),
		route("GET", "/v3/services/{id}", admin, "identity:get_service", show(s, s.services)),
		route("PATCH", "/v3/services/{id}", admin, "identity:update_service", update(s, s.services, readService)),
		route("DELETE", "/v3/services/{id}", admin, "identity:delete_service", s.deleteRow(tServices)),

		route("GET", "/v3/endpoints", admin, "identity:list_endpoints", list(s, s.endpoints)),
		route("POST", "/v3/endpoints", admin, "identity:create_endpoint", create(s, s.endpoints, readEndpoint)),
		route("GET", "/v3/endpoints/{id}", admin, "identity:get_endpoint", show(s, s.endpoints)),
		route("PATCH", "/v3/endpoints/{id}", admin, "identity:update_endpoint", update(s, s.endpoints, readEndpoint)),
		route("DELETE", "/v3/endpoints/{id}", admin, "identity:delete_endpoint", s.deleteRow(tEndpoints)),

		// Policy documents, stored for other services (see policies.go).
		route("GET", "/v3/policies", admin, "identity:list_policies", list(s, s.policies)),
		route("POST", "/v3/policies", admin, "identity:create_policy", create(s, s.policies, readPolicy)),
		route("GET", "/v3/policies/{id}", admin, "identity:get_policy", show(s, s.policies)),
		route("PATCH", "/v3/policies/{id}", admin, "identity:update_policy", update(s, s.policies, readPolicy)),
		route("DELETE", "/v3/policies/{id}", admin, "identity:delete_policy", s.deleteRow(tPolicies)),

		// Users manage their own credentials: the collection shows a
		// caller only its own.
		route("GET", "/v3/credentials", authed, "identity:list_credentials", list(s, s.credentials)),
		route("POST", "/v3/credentials", authed, "identity:create_credential", create(s, s.credentials, s.readCredential)),
		route("GET", "/v3/credentials/{id}", authed, "identity:get_credential", show(s, s.credentials)),
		route("PATCH", "/v3/credentials/{id}", authed, "identity:update_credential", update(s, s.credentials, s.readCredential)),
		route("DELETE", "/v3/credentials/{id}", authed, "identity:delete_credential", s.deleteCredential),
	}
	routes = append(routes, s.epFilterRoutes()...)
	routes = append(routes, s.domainConfigRoutes()...)
	routes = append(routes, s.limitRoutes()...)
	routes = append(routes, s.oauthRoutes()...)
	for _, scope := range []string{"projects", "domains", "system"} {
		for _, actor := range []string{"users", "groups"} {
			base := "/v3/" + scope + "/{scope}/" + actor + "/{actor}/roles"
			if scope == "system" {
				base = "/v3/system/" + actor + "/{actor}/roles"
			}
			routes = append(routes,
				api.Route{Method: "GET", Path: base, Access: admin, Rule: "identity:list_grants", Handle: s.listGrants(scope, actor, false)},
				api.Route{Method: "PUT", Path: base + "/{role}", Access: admin, Rule: "identity:create_grant", Handle: s.grant(scope, actor, false, true)},
				api.Route{Method: "DELETE", Path: base + "/{role}", Access: admin, Rule: "identity:revoke_grant", Handle: s.grant(scope, actor, false, false)},
				api.Route{Method: "HEAD", Path: base + "/{role}", Access: admin, Rule: "identity:check_grant", Handle: s.checkGrant(scope, actor, false)},
				api.Route{Method: "GET", Path: base + "/{role}", Access: admin, Rule: "identity:check_grant", Handle: s.checkGrant(scope, actor, false)},
			)
			if scope == "system" {
				continue
			}
			// OS-INHERIT: the same grants, held on the projects below.
			inh := "/v3/OS-INHERIT/" + scope + "/{scope}/" + actor + "/{actor}/roles"
			routes = append(routes,
				api.Route{Method: "GET", Path: inh + "/inherited_to_projects", Access: admin, Rule: "identity:list_grants", Handle: s.listGrants(scope, actor, true)},
				api.Route{Method: "PUT", Path: inh + "/{role}/inherited_to_projects", Access: admin, Rule: "identity:create_grant", Handle: s.grant(scope, actor, true, true)},
				api.Route{Method: "DELETE", Path: inh + "/{role}/inherited_to_projects", Access: admin, Rule: "identity:revoke_grant", Handle: s.grant(scope, actor, true, false)},
				api.Route{Method: "HEAD", Path: inh + "/{role}/inherited_to_projects", Access: admin, Rule: "identity:check_grant", Handle: s.checkGrant(scope, actor, true)},
				api.Route{Method: "GET", Path: inh + "/{role}/inherited_to_projects", Access: admin, Rule: "identity:check_grant", Handle: s.checkGrant(scope, actor, true)},
			)
		}
	}
	return routes
}

func route(method, path string, access api.Access, rule string, h api.HandlerFunc) api.Route {
	return api.Route{Method: method, Path: path, Access: access, Rule: rule, Handle: h}
}

func (s *Service) versionDoc(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links":       []map[string]any{{"rel": "self", "href": s.baseURL(r) + "/identity/v3/"}},
		"media-types": []map[string]any{{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}},
	}
}

func (s *Service) versions(w http.ResponseWriter, r *http.Request) error {
	api.JSON(w, http.StatusMultipleChoices, map[string]any{"versions": map[string]any{"values": []any{s.versionDoc(r)}}})
	return nil
}

func (s *Service) version(w http.ResponseWriter, r *http.Request) error {
	api.JSON(w, http.StatusOK, map[string]any{"version": s.versionDoc(r)})
	return nil
}

// authSystem lists the system scopes the caller's user may scope a token
// to: the one system, "all", when it holds a role there.
func (s *Service) authSystem(w http.ResponseWriter, r *http.Request) error {
	p := api.PrincipalFrom(r.Context())
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	out := []any{}
	if len(effectiveRoles(tx, p.UserID, "system", systemAll)) > 0 {
		out = append(out, map[string]any{"all": true})
	}
	api.JSON(w, http.StatusOK, map[string]any{"system": out, "links": s.links(r)})
	return nil
}

func (s *Service) links(r *http.Request) map[string]any {
	return map[string]any{"self": s.baseURL(r) + "/identity" + r.URL.Path, "previous": nil, "next": nil}
}

func (s *Service) self(r *http.Request, kind, id string) map[string]any {
	return map[string]any{"self": s.baseURL(r) + "/identity/v3/" + kind + "/" + id}
}

func remarshal(in, out any) error {
	raw, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}
