package identity

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
)

// Handler serves Keystone under the prefix the caller strips (/identity):
// "/" is version discovery, "/v3/..." the API.
func (s *Service) Handler() http.Handler {
	r := chi.NewRouter()
	r.Get("/", s.versions)
	r.Get("/v3", s.version)
	r.Get("/v3/", s.version)
	r.Post("/v3/auth/tokens", s.postToken)
	// Like Keystone, a password change authenticates with the original
	// password, so a user whose token is gone can still change it.
	r.Post("/v3/users/{id}/password", s.changePassword)
	r.Group(func(r chi.Router) {
		r.Use(api.RequireAuth(s, writeError))
		r.Get("/v3/auth/tokens", s.getToken)
		r.Head("/v3/auth/tokens", s.headToken)
		r.Delete("/v3/auth/tokens", s.deleteToken)
		r.Get("/v3/auth/catalog", s.authCatalog)
		r.Get("/v3/auth/projects", s.authProjects)
		r.Get("/v3/auth/domains", s.authDomains)
		r.Get("/v3/auth/system", func(w http.ResponseWriter, r *http.Request) {
			api.JSON(w, http.StatusOK, map[string]any{"system": []any{}, "links": s.links(r)})
		})

		r.Get("/v3/domains", s.listDomains)
		r.Post("/v3/domains", s.admin(s.createDomain))
		r.Get("/v3/domains/{id}", s.showDomain)
		r.Patch("/v3/domains/{id}", s.admin(s.updateDomain))
		r.Delete("/v3/domains/{id}", s.admin(s.deleteRow(tDomains)))

		r.Get("/v3/projects", s.admin(s.listProjects))
		r.Post("/v3/projects", s.admin(s.createProject))
		r.Get("/v3/projects/{id}", s.showProject)
		r.Patch("/v3/projects/{id}", s.admin(s.updateProject))
		r.Delete("/v3/projects/{id}", s.admin(s.deleteRow(tProjects)))
		r.Get("/v3/projects/{id}/tags", s.listTags)
		r.Put("/v3/projects/{id}/tags", s.admin(s.replaceTags))
		r.Delete("/v3/projects/{id}/tags", s.admin(s.tag("clear")))
		r.Get("/v3/projects/{id}/tags/{tag}", s.checkTag)
		r.Head("/v3/projects/{id}/tags/{tag}", s.checkTag)
		r.Put("/v3/projects/{id}/tags/{tag}", s.admin(s.tag("add")))
		r.Delete("/v3/projects/{id}/tags/{tag}", s.admin(s.tag("remove")))

		r.Get("/v3/users", s.admin(s.listUsers))
		r.Post("/v3/users", s.admin(s.createUser))
		r.Get("/v3/users/{id}", s.showUser)
		r.Patch("/v3/users/{id}", s.admin(s.updateUser))
		r.Delete("/v3/users/{id}", s.admin(s.deleteRow(tUsers)))
		r.Get("/v3/users/{id}/projects", s.listUserProjects)
		r.Get("/v3/users/{id}/groups", s.listUserGroups)
		r.Get("/v3/users/{id}/credentials/OS-EC2", s.listEC2)
		r.Post("/v3/users/{id}/credentials/OS-EC2", s.createEC2)
		r.Get("/v3/users/{id}/credentials/OS-EC2/{access}", s.showEC2)
		r.Delete("/v3/users/{id}/credentials/OS-EC2/{access}", s.deleteEC2)

		r.Get("/v3/roles", s.listRoles)
		r.Post("/v3/roles", s.admin(s.createRole))
		r.Get("/v3/roles/{id}", s.showRole)
		r.Patch("/v3/roles/{id}", s.admin(s.updateRole))
		r.Delete("/v3/roles/{id}", s.admin(s.deleteRow(tRoles)))
		r.Get("/v3/roles/{prior}/implies", s.admin(s.listImplied))
		r.Put("/v3/roles/{prior}/implies/{implied}", s.admin(s.putImplication))
		r.Get("/v3/roles/{prior}/implies/{implied}", s.admin(s.getImplication))
		r.Head("/v3/roles/{prior}/implies/{implied}", s.admin(s.getImplication))
		r.Delete("/v3/roles/{prior}/implies/{implied}", s.admin(s.deleteImplication))
		r.Get("/v3/role_inferences", s.admin(s.listInferences))

		for _, scope := range []string{"projects", "domains"} {
			for _, actor := range []string{"users", "groups"} {
				base := "/v3/" + scope + "/{scope}/" + actor + "/{actor}/roles"
				r.Get(base, s.admin(s.listGrants(scope, actor)))
				r.Put(base+"/{role}", s.admin(s.grant(scope, actor, true)))
				r.Delete(base+"/{role}", s.admin(s.grant(scope, actor, false)))
				r.Head(base+"/{role}", s.admin(s.checkGrant(scope, actor)))
				r.Get(base+"/{role}", s.admin(s.checkGrant(scope, actor)))
			}
		}
		r.Get("/v3/role_assignments", s.listAssignments)

		r.Get("/v3/groups", s.admin(s.listGroups))
		r.Post("/v3/groups", s.admin(s.createGroup))
		r.Get("/v3/groups/{id}", s.admin(s.showGroup))
		r.Patch("/v3/groups/{id}", s.admin(s.updateGroup))
		r.Delete("/v3/groups/{id}", s.admin(s.deleteRow(tGroups)))
		r.Get("/v3/groups/{id}/users", s.admin(s.listGroupUsers))
		r.Put("/v3/groups/{id}/users/{user}", s.admin(s.membership(true)))
		r.Delete("/v3/groups/{id}/users/{user}", s.admin(s.membership(false)))
		r.Head("/v3/groups/{id}/users/{user}", s.admin(s.checkMembership))
		r.Get("/v3/groups/{id}/users/{user}", s.admin(s.checkMembership))

		r.Get("/v3/regions", s.listRegions)
		r.Post("/v3/regions", s.admin(s.createRegion))
		r.Put("/v3/regions/{id}", s.admin(s.createRegion))
		r.Get("/v3/regions/{id}", s.showRegion)
		r.Patch("/v3/regions/{id}", s.admin(s.updateRegion))
		r.Delete("/v3/regions/{id}", s.admin(s.deleteRow(tRegions)))

		r.Get("/v3/services", s.admin(s.listServices))
		r.Post("/v3/services", s.admin(s.createService))
		r.Get("/v3/services/{id}", s.admin(s.showService))
		r.Patch("/v3/services/{id}", s.admin(s.updateService))
		r.Delete("/v3/services/{id}", s.admin(s.deleteRow(tServices)))

		r.Get("/v3/endpoints", s.admin(s.listEndpoints))
		r.Post("/v3/endpoints", s.admin(s.createEndpoint))
		r.Get("/v3/endpoints/{id}", s.admin(s.showEndpoint))
		r.Patch("/v3/endpoints/{id}", s.admin(s.updateEndpoint))
		r.Delete("/v3/endpoints/{id}", s.admin(s.deleteRow(tEndpoints)))

		r.Get("/v3/credentials", s.listCredentials)
		r.Post("/v3/credentials", s.createCredential)
		r.Get("/v3/credentials/{id}", s.showCredential)
		r.Patch("/v3/credentials/{id}", s.updateCredential)
		r.Delete("/v3/credentials/{id}", s.deleteCredential)
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, api.Problem{Status: http.StatusNotFound, Msg: "The resource could not be found."})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, api.Problem{Status: http.StatusMethodNotAllowed, Msg: "The method is not allowed for the requested URL."})
	})
	return r
}

// admin wraps a handler that needs the cloud admin role.
func (s *Service) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !api.PrincipalFrom(r.Context()).IsAdmin() {
			forbidden(w, r)
			return
		}
		h(w, r)
	}
}

func forbidden(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, api.Problem{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action."})
}

func (s *Service) versionDoc(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links":       []map[string]any{{"rel": "self", "href": s.baseURL(r) + "/identity/v3/"}},
		"media-types": []map[string]any{{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}},
	}
}

func (s *Service) versions(w http.ResponseWriter, r *http.Request) {
	api.JSON(w, http.StatusMultipleChoices, map[string]any{"versions": map[string]any{"values": []any{s.versionDoc(r)}}})
}

func (s *Service) version(w http.ResponseWriter, r *http.Request) {
	api.JSON(w, http.StatusOK, map[string]any{"version": s.versionDoc(r)})
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
