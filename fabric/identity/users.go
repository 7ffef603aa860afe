package identity

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"
	"golang.org/x/crypto/bcrypt"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// users is the user collection. Listing is for admins and a user may
// read itself: the routes and selfOrAdmin check that before.
func (s *Service) users(r *http.Request) api.Collection[User] {
	l := s.listing("users")
	// A user's view leaves these out when unset; a filter on one must
	// still leave out the users without it.
	l.Filters = api.OptionalStrings("description", "email", "default_project_id")
	return api.Collection[User]{
		Table: tUsers, One: "user", NotFound: notFoundOf("user"), Listing: l,
		Visible: func(*api.Principal, *User) bool { return true },
		View:    func(_ *memdb.Txn, _ *api.Principal, u *User) api.View { return s.userView(r, u) },
	}
}

func (s *Service) userView(r *http.Request, u *User) api.View {
	v := api.View{"id": u.ID, "name": u.Name, "domain_id": u.DomainID, "enabled": u.Enabled, "password_expires_at": nil,
		"options": map[string]any{}, "links": s.self(r, "users", u.ID)}
	if len(u.Options) > 0 {
		v["options"] = u.Options
	}
	if u.DefaultProjectID != "" {
		v["default_project_id"] = u.DefaultProjectID
	}
	if u.Description != "" {
		v["description"] = u.Description
	}
	if u.Email != "" {
		v["email"] = u.Email
	}
	return withExtras(u.Extra, v)
}

// selfOrAdmin lets through the user in the URL, or an admin.
func selfOrAdmin(next api.HandlerFunc) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p := api.PrincipalFrom(r.Context())
		if !p.IsAdmin() && p.UserID != chi.URLParam(r, "id") {
			return errForbidden
		}
		return next(w, r)
	}
}

var userFields = []string{"name", "domain_id", "enabled", "password", "default_project_id", "description", "email", "options"}

// secret reads a password: any string, control characters included (it
// is never shown or logged, only hashed), as Keystone takes it.
func secret(in *api.Input, field string, required bool) string {
	v, ok := in.Obj[field]
	if in.Err != nil || ((!ok || v == nil) && !required) {
		return ""
	}
	s, isStr := v.(string)
	switch {
	case !ok || v == nil:
		in.Fail(in.Word.Missing(field))
	case !isStr:
		in.Fail(api.BadField(field, "%s is not of type 'string'", jsonText(v)))
	case required && s == "":
		in.Fail(api.BadField(field, "'%s' must not be empty", field))
	}
	return s
}

func (s *Service) hash(password string) ([]byte, error) {
	if len(password) > 72 {
		return nil, api.BadField("password", "must be at most 72 bytes")
	}
	return bcrypt.GenerateFromPassword([]byte(password), s.cfg.BcryptCost)
}

// readUser reads a user's attributes; a password is hashed here, before
// any command carries it.
func (s *Service) readUser(r *http.Request, in *api.Input, old *User) (*User, string, error) {
	u := User{ID: api.NewHexID(), Enabled: true}
	if old != nil {
		u = *old
	}
	u.Name = name(in, u.Name, old == nil, maxName)
	if old == nil {
		u.DomainID = str(in, "domain_id", "default")
	}
	u.Enabled = boolean(in, "enabled", u.Enabled)
	u.DefaultProjectID = str(in, "default_project_id", u.DefaultProjectID)
	u.Description = str(in, "description", u.Description)
	u.Email = str(in, "email", u.Email)
	u.Options = readUserOptions(in, u.Options)
	password := secret(in, "password", false)
	u.Extra = mergeExtras(u.Extra, in, userFields...)
	if in.Err != nil {
		return nil, "", in.Err
	}
	if u.DomainID == "" {
		u.DomainID = "default"
	}
	return &u, password, nil
}

func (s *Service) createUser(w http.ResponseWriter, r *http.Request) error {
	in, err := body(r, "user")
	if err != nil {
		return err
	}
	u, password, err := s.readUser(r, in, nil)
	if err != nil {
		return err
	}
	if password != "" {
		if u.PasswordHash, err = s.hash(password); err != nil {
			return err
		}
	}
	if u.DefaultProjectID != "" {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		if store.Get[Project](tx, tProjects, u.DefaultProjectID) == nil {
			return api.BadField("default_project_id", "project %s does not exist", u.DefaultProjectID)
		}
	}
	if err := s.put(r, tUsers, true, u); err != nil {
		return err
	}
	api.JSON(w, http.StatusCreated, map[string]any{"user": s.userView(r, u)})
	return nil
}

// updateUser changes a user; a new password is set by its own command,
// which revokes the user's tokens.
func (s *Service) updateUser(w http.ResponseWriter, r *http.Request) error {
	tx, id, err := s.readUserPath(r)
	if err != nil {
		return err
	}
	old := store.Get[User](tx, tUsers, id)
	in, err := body(r, "user")
	if err != nil {
		return err
	}
	u, password, err := s.readUser(r, in, old)
	if err != nil {
		return err
	}
	if err := s.put(r, tUsers, false, u); err != nil {
		return err
	}
	if password != "" {
		if err := s.setPassword(r, u.ID, password); err != nil {
			return err
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"user": s.userView(r, u)})
	return nil
}

func (s *Service) setPassword(r *http.Request, user, password string) error {
	h, err := s.hash(password)
	if err != nil {
		return err
	}
	return s.narrow(r.Context(), cmdSetPassword, passwordCmd{UserID: user, Hash: h, At: s.cfg.Now().UTC()})
}

// errPasswordLocked is Keystone's answer to a self-service change of a
// password its user's lock_password option locks.
var errPasswordLocked = &api.Error{Status: http.StatusForbidden, Msg: "You cannot change your password at this time due to password policy disallowing password changes. Please contact your administrator to reset your password."}

var errUnauthorized = &api.Error{Status: http.StatusUnauthorized, Msg: "The request you have made requires authentication."}

// changePassword is the self-service change; it revokes the user's tokens.
// Like Keystone, it authenticates with the original password, so a user
// whose token is gone can still change it.
func (s *Service) changePassword(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	in, err := body(r, "user")
	if err != nil {
		return err
	}
	orig := secret(in, "original_password", true)
	next := secret(in, "password", true)
	if in.Err != nil {
		return in.Err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	u := store.Get[User](tx, tUsers, id)
	if err := s.checkPassword(tx, source(r), id, u, orig); err != nil {
		if err := throttledError(w, err); err != api.ErrUnauthorized {
			return err
		}
		return errUnauthorized
	}
	if u.optionSet(optLockPassword) {
		return errPasswordLocked
	}
	// The route is public, so no token named the actor: the original
	// password did, and the event log names the user.
	o := store.OriginFrom(r.Context())
	o.User = id
	r = r.WithContext(store.WithOrigin(r.Context(), o))
	if err := s.setPassword(r, id, next); err != nil {
		return err
	}
	return noContent(w)
}

// readUserPath reads the state and checks that the user the path names
// ({id}) exists.
func (s *Service) readUserPath(r *http.Request) (*memdb.Txn, string, error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, "", err
	}
	id := chi.URLParam(r, "id")
	if store.Get[User](tx, tUsers, id) == nil {
		return nil, "", notFoundErr("user", id)
	}
	return tx, id, nil
}

func (s *Service) listUserProjects(w http.ResponseWriter, r *http.Request) error {
	tx, id, err := s.readUserPath(r)
	if err != nil {
		return err
	}
	return s.writeList(w, r, s.listing("projects"), s.projectViews(r, userProjects(tx, id)))
}

func (s *Service) projectViews(r *http.Request, ps []*Project) []api.View {
	out := make([]api.View, 0, len(ps))
	for _, p := range ps {
		out = append(out, s.projectView(r, p))
	}
	return out
}

func (s *Service) listUserGroups(w http.ResponseWriter, r *http.Request) error {
	tx, id, err := s.readUserPath(r)
	if err != nil {
		return err
	}
	out := []api.View{}
	for _, m := range store.All[Membership](tx, tMembers, "user", id) {
		if g := store.Get[Group](tx, tGroups, m.GroupID); g != nil {
			out = append(out, s.groupView(r, g))
		}
	}
	return s.writeList(w, r, s.listing("groups"), out)
}
