// Package client is a small Go client for a Rackstack cloud: it logs in to
// Keystone with the usual OS_* settings and calls the Rackstack APIs.
// rackctl, rackbench and tests use it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rackstack/rackstack/dataplane/dataplaneapi"
	"github.com/rackstack/rackstack/fabric/cluster/clusterapi"
	"github.com/rackstack/rackstack/storage/block/blockapi"
	"github.com/rackstack/rackstack/storage/object/objectapi"
)

// Config says where the cloud is and who calls it.
type Config struct {
	AuthURL       string // Keystone v3, e.g. http://127.0.0.1:8770/identity/v3
	Username      string
	Password      string
	ProjectName   string
	UserDomain    string // default "Default"
	ProjectDomain string // default "Default"
	Token         string // used as is when set
	BaseURL       string // the rackd API; default: AuthURL without /identity/v3
	HTTP          *http.Client
}

// FromEnv reads the OS_* variables the openstack CLI reads. It returns the
// name of the first missing variable, if any.
func FromEnv(getenv func(string) string) (Config, string) {
	c := Config{
		AuthURL: getenv("OS_AUTH_URL"), Username: getenv("OS_USERNAME"), Password: getenv("OS_PASSWORD"),
		ProjectName: getenv("OS_PROJECT_NAME"), UserDomain: getenv("OS_USER_DOMAIN_NAME"),
		ProjectDomain: getenv("OS_PROJECT_DOMAIN_NAME"), Token: getenv("OS_TOKEN"), BaseURL: getenv("RACKSTACK_URL"),
	}
	if c.AuthURL == "" && c.BaseURL == "" {
		return c, "OS_AUTH_URL"
	}
	if c.Token == "" {
		for _, v := range []struct{ name, val string }{{"OS_USERNAME", c.Username}, {"OS_PASSWORD", c.Password}, {"OS_PROJECT_NAME", c.ProjectName}} {
			if v.val == "" {
				return c, v.name
			}
		}
	}
	return c, ""
}

// Client calls one cloud.
type Client struct {
	cfg   Config
	http  *http.Client
	mu    sync.Mutex
	token string
}

// APIError is a non-2xx answer.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status) }

// New builds a client; it logs in lazily.
func New(cfg Config) *Client {
	if cfg.UserDomain == "" {
		cfg.UserDomain = "Default"
	}
	if cfg.ProjectDomain == "" {
		cfg.ProjectDomain = "Default"
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = strings.TrimSuffix(strings.TrimSuffix(strings.TrimRight(cfg.AuthURL, "/"), "/v3"), "/identity")
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.AuthURL == "" {
		cfg.AuthURL = cfg.BaseURL + "/identity/v3"
	}
	h := cfg.HTTP
	if h == nil {
		h = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{cfg: cfg, http: h, token: cfg.Token}
}

// Token logs in (once) and returns the token.
func (c *Client) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" {
		return c.token, nil
	}
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{
			"name": c.cfg.Username, "password": c.cfg.Password, "domain": map[string]any{"name": c.cfg.UserDomain}}}},
		"scope": map[string]any{"project": map[string]any{"name": c.cfg.ProjectName, "domain": map[string]any{"name": c.cfg.ProjectDomain}}},
	}}
	resp, err := c.send(ctx, http.MethodPost, strings.TrimRight(c.cfg.AuthURL, "/")+"/auth/tokens", "", body)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if err := check(resp); err != nil {
		return "", fmt.Errorf("log in as %s: %w", c.cfg.Username, err)
	}
	c.token = resp.Header.Get("X-Subject-Token")
	if c.token == "" {
		return "", errors.New("log in: no X-Subject-Token in the answer")
	}
	return c.token, nil
}

func (c *Client) send(ctx context.Context, method, url, token string, in any, headers ...string) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	return resp, nil
}

// check turns a non-2xx answer into an *APIError with the service's message.
func check(resp *http.Response) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	msg := strings.TrimSpace(string(raw))
	var generic map[string]json.RawMessage
	if json.Unmarshal(raw, &generic) == nil {
		for _, v := range generic { // {"error": {...}}, {"itemNotFound": {...}}, {"NeutronError": {...}}
			var inner struct {
				Message string `json:"message"`
			}
			if json.Unmarshal(v, &inner) == nil && inner.Message != "" {
				msg = inner.Message
				break
			}
		}
		// Ironic: {"error_message": "{\"faultstring\": ...}"}, JSON in a string.
		var text string
		var fault struct {
			Faultstring string `json:"faultstring"`
		}
		if json.Unmarshal(generic["error_message"], &text) == nil && json.Unmarshal([]byte(text), &fault) == nil && fault.Faultstring != "" {
			msg = fault.Faultstring
		}
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &APIError{Status: resp.StatusCode, Message: msg}
}

// Do calls path on the rackd API (e.g. "/rackstack/v1/nodes") with in as the
// JSON body and decodes the answer into out (raw bytes if out is *[]byte);
// headers are name, value pairs to add.
func (c *Client) Do(ctx context.Context, method, path string, in, out any, headers ...string) error {
	tok, err := c.Token(ctx)
	if err != nil {
		return err
	}
	resp, err := c.send(ctx, method, c.cfg.BaseURL+path, tok, in, headers...)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := check(resp); err != nil {
		return err
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = raw
		return nil
	default:
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
		return nil
	}
}

// ClusterStatus is GET /rackstack/v1/cluster/status.
func (c *Client) ClusterStatus(ctx context.Context) (clusterapi.Status, error) {
	var st clusterapi.Status
	return st, c.Do(ctx, http.MethodGet, "/rackstack/v1/cluster/status", nil, &st)
}

// CreateJoinToken is POST /rackstack/v1/cluster/join-tokens.
func (c *Client) CreateJoinToken(ctx context.Context, ttl time.Duration, uses int) (clusterapi.JoinTokenResponse, error) {
	var out clusterapi.JoinTokenResponse
	return out, c.Do(ctx, http.MethodPost, "/rackstack/v1/cluster/join-tokens", clusterapi.JoinTokenRequest{TTL: ttl.String(), Uses: &uses}, &out)
}

// JoinTokens is GET /rackstack/v1/cluster/join-tokens.
func (c *Client) JoinTokens(ctx context.Context) ([]clusterapi.JoinToken, error) {
	var out struct {
		Tokens []clusterapi.JoinToken `json:"join_tokens"`
	}
	return out.Tokens, c.Do(ctx, http.MethodGet, "/rackstack/v1/cluster/join-tokens", nil, &out)
}

// RevokeJoinToken is DELETE /rackstack/v1/cluster/join-tokens/{id}.
func (c *Client) RevokeJoinToken(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/rackstack/v1/cluster/join-tokens/"+url.PathEscape(id), nil, nil)
}

// Nodes is GET /rackstack/v1/nodes.
func (c *Client) Nodes(ctx context.Context) ([]clusterapi.NodeInfo, error) {
	var out struct {
		Nodes []clusterapi.NodeInfo `json:"nodes"`
	}
	return out.Nodes, c.Do(ctx, http.MethodGet, "/rackstack/v1/nodes", nil, &out)
}

// Node is GET /rackstack/v1/nodes/{name}.
func (c *Client) Node(ctx context.Context, name string) (clusterapi.NodeInfo, error) {
	var out struct {
		Node clusterapi.NodeInfo `json:"node"`
	}
	return out.Node, c.Do(ctx, http.MethodGet, "/rackstack/v1/nodes/"+url.PathEscape(name), nil, &out)
}

// DataplaneStatus is GET /rackstack/v1/nodes/{name}/dataplane: the
// node's ports, programs, maps and counters.
func (c *Client) DataplaneStatus(ctx context.Context, node string) (dataplaneapi.Status, error) {
	var st dataplaneapi.Status
	return st, c.Do(ctx, http.MethodGet, "/rackstack/v1/nodes/"+url.PathEscape(node)+"/dataplane", nil, &st)
}

// StorageStatus is the object store's status and the space of block
// volumes beside it.
type StorageStatus struct {
	objectapi.Status
	Volumes *blockapi.Usage `json:"volumes,omitempty"`
}

// StorageStatus is GET /rackstack/v1/storage/status.
func (c *Client) StorageStatus(ctx context.Context) (StorageStatus, error) {
	var st StorageStatus
	return st, c.Do(ctx, http.MethodGet, "/rackstack/v1/storage/status", nil, &st)
}

// CreateVolume is POST /rackstack/v1/volumes: a raw block-store volume.
func (c *Client) CreateVolume(ctx context.Context, req blockapi.CreateRequest) (blockapi.Volume, error) {
	var v blockapi.Volume
	return v, c.Do(ctx, http.MethodPost, "/rackstack/v1/volumes", req, &v)
}

// Volume is GET /rackstack/v1/volumes/{id}.
func (c *Client) Volume(ctx context.Context, id string) (blockapi.Volume, error) {
	var v blockapi.Volume
	return v, c.Do(ctx, http.MethodGet, "/rackstack/v1/volumes/"+url.PathEscape(id), nil, &v)
}

// DeleteVolume is DELETE /rackstack/v1/volumes/{id}.
func (c *Client) DeleteVolume(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/rackstack/v1/volumes/"+url.PathEscape(id), nil, nil)
}

// ExportVolume is POST /rackstack/v1/volumes/{id}/export: the node that
// answers serves the volume over NBD.
func (c *Client) ExportVolume(ctx context.Context, id string) (blockapi.Export, error) {
	var e blockapi.Export
	return e, c.Do(ctx, http.MethodPost, "/rackstack/v1/volumes/"+url.PathEscape(id)+"/export", nil, &e)
}

// UnexportVolume is DELETE /rackstack/v1/volumes/{id}/export.
func (c *Client) UnexportVolume(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/rackstack/v1/volumes/"+url.PathEscape(id)+"/export", nil, nil)
}
