package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Identity calls of Keystone v3 that tools making temporary resources
// need: who the caller is, projects with tags, role grants, EC2
// credentials and the catalog of one node.

// Whoami is the caller's token: user, project and role names.
type Whoami struct {
	UserID    string
	ProjectID string
	Roles     []string
}

// IsAdmin says whether the token carries the admin role.
func (w Whoami) IsAdmin() bool {
	for _, r := range w.Roles {
		if r == "admin" {
			return true
		}
	}
	return false
}

// Whoami is GET /identity/v3/auth/tokens on the caller's own token.
func (c *Client) Whoami(ctx context.Context) (Whoami, error) {
	tok, err := c.Token(ctx)
	if err != nil {
		return Whoami{}, err
	}
	var out struct {
		Token struct {
			User    struct{ ID string }     `json:"user"`
			Project struct{ ID string }     `json:"project"`
			Roles   []struct{ Name string } `json:"roles"`
		} `json:"token"`
	}
	if err := c.Do(ctx, http.MethodGet, "/identity/v3/auth/tokens?nocatalog", nil, &out, "X-Subject-Token", tok); err != nil {
		return Whoami{}, fmt.Errorf("validate own token: %w", err)
	}
	w := Whoami{UserID: out.Token.User.ID, ProjectID: out.Token.Project.ID}
	for _, r := range out.Token.Roles {
		w.Roles = append(w.Roles, r.Name)
	}
	return w, nil
}

// Project is a Keystone project.
type Project struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Tags        []string `json:"tags"`
}

// CreateProject is POST /identity/v3/projects in the default domain.
func (c *Client) CreateProject(ctx context.Context, name, description string, tags []string) (Project, error) {
	in := map[string]any{"project": map[string]any{"name": name, "description": description, "tags": tags, "domain_id": "default", "enabled": true}}
	var out struct {
		Project Project `json:"project"`
	}
	return out.Project, c.Do(ctx, http.MethodPost, "/identity/v3/projects", in, &out)
}

// ProjectsTagged is GET /identity/v3/projects?tags=tag.
func (c *Client) ProjectsTagged(ctx context.Context, tag string) ([]Project, error) {
	var out struct {
		Projects []Project `json:"projects"`
	}
	return out.Projects, c.Do(ctx, http.MethodGet, "/identity/v3/projects?tags="+url.QueryEscape(tag), nil, &out)
}

// DeleteProject is DELETE /identity/v3/projects/{id}.
func (c *Client) DeleteProject(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/identity/v3/projects/"+url.PathEscape(id), nil, nil)
}

// GrantProjectRole gives user the role called role on project.
func (c *Client) GrantProjectRole(ctx context.Context, project, user, role string) error {
	var roles struct {
		Roles []struct{ ID, Name string } `json:"roles"`
	}
	if err := c.Do(ctx, http.MethodGet, "/identity/v3/roles?name="+url.QueryEscape(role), nil, &roles); err != nil {
		return fmt.Errorf("find role %s: %w", role, err)
	}
	for _, r := range roles.Roles {
		if r.Name == role {
			return c.Do(ctx, http.MethodPut, "/identity/v3/projects/"+url.PathEscape(project)+"/users/"+url.PathEscape(user)+"/roles/"+url.PathEscape(r.ID), nil, nil)
		}
	}
	return fmt.Errorf("find role %s: %w", role, &APIError{Status: http.StatusNotFound, Message: "no role named " + role})
}

// EC2Credential is a Keystone EC2 credential (access and secret keys
// bound to a user and a project).
type EC2Credential struct {
	ID        string // the credential's id in /v3/credentials
	UserID    string
	ProjectID string
	Access    string
	Secret    string
}

// CreateEC2 is POST /identity/v3/users/{user}/credentials/OS-EC2.
func (c *Client) CreateEC2(ctx context.Context, user, project string) (EC2Credential, error) {
	var out struct {
		Credential struct {
			UserID   string `json:"user_id"`
			TenantID string `json:"tenant_id"`
			Access   string `json:"access"`
			Secret   string `json:"secret"`
		} `json:"credential"`
	}
	err := c.Do(ctx, http.MethodPost, "/identity/v3/users/"+url.PathEscape(user)+"/credentials/OS-EC2", map[string]any{"tenant_id": project}, &out)
	k := out.Credential
	return EC2Credential{UserID: k.UserID, ProjectID: k.TenantID, Access: k.Access, Secret: k.Secret}, err
}

// EC2Credentials is GET /identity/v3/credentials (every user's, for an
// admin) less those of other types: ids and projects, without secrets.
func (c *Client) EC2Credentials(ctx context.Context) ([]EC2Credential, error) {
	var out struct {
		Credentials []struct {
			ID        string `json:"id"`
			UserID    string `json:"user_id"`
			ProjectID string `json:"project_id"`
			Type      string `json:"type"`
		} `json:"credentials"`
	}
	if err := c.Do(ctx, http.MethodGet, "/identity/v3/credentials", nil, &out); err != nil {
		return nil, err
	}
	var creds []EC2Credential
	for _, k := range out.Credentials {
		if k.Type != "ec2" {
			continue
		}
		creds = append(creds, EC2Credential{ID: k.ID, UserID: k.UserID, ProjectID: k.ProjectID})
	}
	return creds, nil
}

// DeleteCredential is DELETE /identity/v3/credentials/{id}.
func (c *Client) DeleteCredential(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/identity/v3/credentials/"+url.PathEscape(id), nil, nil)
}

// NodeEndpoint is the public URL of the service of type svcType in the
// catalog as the node at apiURL answers it (each node lists its own
// address; "" is the node the client talks to), with the token's project
// substituted.
func (c *Client) NodeEndpoint(ctx context.Context, apiURL, svcType string) (string, error) {
	if apiURL == "" {
		apiURL = c.cfg.BaseURL
	}
	tok, err := c.Token(ctx)
	if err != nil {
		return "", err
	}
	resp, err := c.send(ctx, http.MethodGet, strings.TrimRight(apiURL, "/")+"/identity/v3/auth/catalog", tok, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if err := check(resp); err != nil {
		return "", fmt.Errorf("read catalog of %s: %w", apiURL, err)
	}
	var out struct {
		Catalog []struct {
			Type      string `json:"type"`
			Endpoints []struct {
				Interface string `json:"interface"`
				URL       string `json:"url"`
			} `json:"endpoints"`
		} `json:"catalog"`
	}
	if err := decodeJSON(resp, &out); err != nil {
		return "", fmt.Errorf("read catalog of %s: %w", apiURL, err)
	}
	for _, s := range out.Catalog {
		if s.Type != svcType {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Interface == "public" {
				return e.URL, nil
			}
		}
	}
	return "", fmt.Errorf("read catalog of %s: no public %s endpoint", apiURL, svcType)
}

func decodeJSON(resp *http.Response, out any) error {
	return json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out)
}
