package identity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/secrets"
	"github.com/rackstack/rackstack/fabric/store"
)

// Credentials. Users manage their own; admins any. The blob of an EC2
// credential holds its secret: it is returned only to its owner or an admin,
// as Keystone does, and never logged. Another user's credential is not
// found, never forbidden.

func (s *Service) credentials(r *http.Request) api.Collection[Credential] {
	return api.Collection[Credential]{
		Table: tCredentials, One: "credential", NotFound: notFoundOf("credential"), Listing: s.listing("credentials"),
		Visible: func(p *api.Principal, c *Credential) bool { return p.IsAdmin() || p.UserID == c.UserID },
		View:    func(_ *memdb.Txn, _ *api.Principal, c *Credential) api.View { return s.credentialView(r, c) },
	}
}

func (s *Service) credentialView(r *http.Request, c *Credential) api.View {
	var project any
	if c.ProjectID != "" {
		project = c.ProjectID
	}
	blob, err := s.openBlob(c)
	if err != nil {
		s.log.Warn("open a credential blob", "credential", c.ID, "err", err)
	}
	return api.View{"id": c.ID, "user_id": c.UserID, "project_id": project, "type": c.Type, "blob": blob, "links": s.self(r, "credentials", c.ID)}
}

// Credential blobs are sealed with the cluster key (package secrets)
// before they are proposed, as Keystone encrypts them with its credential
// keys: the log and its snapshots hold no secret. The row's id is bound
// in, so a blob cannot be moved to another credential. Blobs written in
// clear by older builds still open; the leader seals them (see Run).

// openBlob is a credential's blob in clear.
func (s *Service) openBlob(c *Credential) (string, error) { return s.openSealed(c.ID, c.Blob) }

// openSealed opens what sealBlob sealed for the row id.
func (s *Service) openSealed(id, sealed string) (string, error) {
	if s.cfg.Secrets == nil {
		return sealed, nil
	}
	plain, err := s.cfg.Secrets.Open(sealed, []byte(id))
	if err != nil {
		return "", fmt.Errorf("open the secret of %s: %w", id, err)
	}
	return string(plain), nil
}

// sealBlob seals a blob for the credential id.
func (s *Service) sealBlob(id, blob string) (string, error) {
	if s.cfg.Secrets == nil {
		return blob, nil
	}
	sealed, err := s.cfg.Secrets.Seal([]byte(blob), []byte(id))
	if errors.Is(err, secrets.ErrNoKey) {
		return "", &api.Error{Status: http.StatusServiceUnavailable, Msg: "This node does not hold the cluster secret key yet; retry shortly."}
	}
	return sealed, err
}

// readCredential reads a credential; an EC2 one is keyed by its access
// key. The blob it returns is sealed.
func (s *Service) readCredential(r *http.Request, in *api.Input, old *Credential) (*Credential, error) {
	var c Credential
	if old != nil {
		c = *old
		blob, err := s.openBlob(old)
		if err != nil {
			return nil, err
		}
		c.Blob = str(in, "blob", blob)
	} else {
		c = Credential{ID: api.NewHexID(), UserID: required(in, "user_id"), Type: required(in, "type"), Blob: required(in, "blob")}
	}
	c.ProjectID = str(in, "project_id", c.ProjectID)
	if in.Err != nil {
		return nil, in.Err
	}
	if p := api.PrincipalFrom(r.Context()); !p.IsAdmin() && c.UserID != p.UserID {
		return nil, errForbidden
	}
	if err := s.refuseTrustScoped(r, "or change credentials"); err != nil {
		return nil, err
	}
	if c.Type == "ec2" {
		b, err := parseEC2Blob(c.Blob)
		if err != nil {
			return nil, err
		}
		if old == nil {
			if c.ProjectID == "" {
				return nil, api.BadField("project_id", "an ec2 credential needs a project")
			}
			c.ID = ec2CredentialID(b.Access)
		}
		c.Access = b.Access
	}
	sealed, err := s.sealBlob(c.ID, c.Blob)
	if err != nil {
		return nil, err
	}
	c.Blob = sealed
	return &c, nil
}

func (s *Service) deleteCredential(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	c, err := s.credentials(r).Get(tx, api.PrincipalFrom(r.Context()), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if err := s.remove(r, tCredentials, c.ID); err != nil {
		return err
	}
	return noContent(w)
}

// OS-EC2: /v3/users/{id}/credentials/OS-EC2, what `openstack ec2
// credentials create` uses. The routes let only the user or an admin in.

func (s *Service) ec2View(r *http.Request, c *Credential) map[string]any {
	blob, err := s.openBlob(c)
	if err != nil {
		s.log.Warn("open a credential blob", "credential", c.ID, "err", err)
	}
	b, _ := parseEC2Blob(blob)
	return map[string]any{"user_id": c.UserID, "tenant_id": c.ProjectID, "access": b.Access, "secret": b.Secret, "trust_id": nil,
		"links": map[string]any{"self": s.baseURL(r) + "/identity/v3/users/" + c.UserID + "/credentials/OS-EC2/" + b.Access}}
}

func (s *Service) listEC2(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, c := range store.All[Credential](tx, tCredentials, "user", chi.URLParam(r, "id")) {
		if c.Type == "ec2" {
			out = append(out, s.ec2View(r, c))
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"credentials": out, "links": s.links(r)})
	return nil
}

func (s *Service) createEC2(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		TenantID string `json:"tenant_id"`
	}
	if err := api.DecodeLoose(r, &req); err != nil {
		return err
	}
	if req.TenantID == "" {
		return api.BadField("tenant_id", "'tenant_id' is a required property")
	}
	if err := s.refuseTrustScoped(r, "EC2 credentials"); err != nil {
		return err
	}
	user := chi.URLParam(r, "id")
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	if store.Get[Project](tx, tProjects, req.TenantID) == nil {
		return notFoundErr("project", req.TenantID)
	}
	if !api.PrincipalFrom(r.Context()).IsAdmin() && len(effectiveRoles(tx, user, "project", req.TenantID)) == 0 {
		return errForbidden
	}
	access, secret := randomHex(16), randomHex(16)
	blob, _ := json.Marshal(ec2Blob{Access: access, Secret: secret})
	c := Credential{ID: ec2CredentialID(access), UserID: user, ProjectID: req.TenantID, Type: "ec2", Blob: string(blob), Access: access}
	sealed := c
	if sealed.Blob, err = s.sealBlob(c.ID, c.Blob); err != nil {
		return err
	}
	if err := s.put(r, tCredentials, true, &sealed); err != nil {
		return err
	}
	api.JSON(w, http.StatusCreated, map[string]any{"credential": s.ec2View(r, &sealed)})
	return nil
}

// ec2Of is the user's EC2 credential in the URL.
func (s *Service) ec2Of(r *http.Request) (*Credential, error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, err
	}
	access := chi.URLParam(r, "access")
	raw, _ := tx.First(tCredentials, "access", access)
	c, _ := raw.(*Credential)
	if c == nil || c.UserID != chi.URLParam(r, "id") || c.Type != "ec2" {
		return nil, notFoundErr("credential", access)
	}
	return c, nil
}

func (s *Service) showEC2(w http.ResponseWriter, r *http.Request) error {
	c, err := s.ec2Of(r)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"credential": s.ec2View(r, c)})
	return nil
}

func (s *Service) deleteEC2(w http.ResponseWriter, r *http.Request) error {
	c, err := s.ec2Of(r)
	if err != nil {
		return err
	}
	if err := s.remove(r, tCredentials, c.ID); err != nil {
		return err
	}
	return noContent(w)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// sealPlaintextCredentials seals the blobs an older build wrote in clear.
// The leader runs it once per start; the clear copies leave the log as it
// is compacted into snapshots.
func (s *Service) sealPlaintextCredentials(ctx context.Context) error {
	if s.cfg.Secrets == nil {
		return nil
	}
	tx, err := s.local(ctx)
	if err != nil {
		return err
	}
	sealedAny := 0
	for _, c := range store.All[Credential](tx, tCredentials, "id") {
		if secrets.Sealed(c.Blob) {
			continue
		}
		n := *c
		if n.Blob, err = s.sealBlob(c.ID, c.Blob); err != nil {
			return err
		}
		raw, err := json.Marshal(&n)
		if err != nil {
			return err
		}
		if _, err := s.cfg.Repl.Propose(ctx, cmdPut, putCmd{Table: tCredentials, Row: raw, At: s.cfg.Now().UTC()}); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted meanwhile
			}
			return err
		}
		sealedAny++
	}
	if sealedAny > 0 {
		s.log.Info("sealed credentials stored in clear by an older build", "count", sealedAny)
	}
	return nil
}
