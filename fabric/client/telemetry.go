package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Event is one entry of the event log (GET /rackstack/v1/events): a change
// of a resource, who asked for it and why.
type Event struct {
	ID           string    `json:"id"`
	Time         time.Time `json:"time"`
	ResourceType string    `json:"resource_type"`
	ResourceID   string    `json:"resource_id"`
	Project      string    `json:"project_id"`
	UserID       string    `json:"user_id"`
	RequestID    string    `json:"request_id"`
	Action       string    `json:"action"`
	From         string    `json:"from"`
	To           string    `json:"to"`
	Reason       string    `json:"reason"`
	Command      string    `json:"command,omitempty"`
}

// EventFilter selects events: of one resource ("" for all), after Since,
// the newest Limit (0: the server's default).
type EventFilter struct {
	Resource string
	Since    time.Time
	Limit    int
}

// Events is GET /rackstack/v1/events, oldest first.
func (c *Client) Events(ctx context.Context, f EventFilter) ([]Event, error) {
	q := url.Values{}
	if f.Resource != "" {
		q.Set("resource", f.Resource)
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.Format(time.RFC3339Nano))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	path := "/rackstack/v1/events"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out struct {
		Events []Event `json:"events"`
	}
	return out.Events, c.Do(ctx, http.MethodGet, path, nil, &out)
}

// SerialConsoleURL asks Nova for a server's interactive serial console
// (POST .../remote-consoles, microversion 2.6) and returns its websocket
// URL, which carries a short-lived token of its own.
func (c *Client) SerialConsoleURL(ctx context.Context, server string) (string, error) {
	var out struct {
		RemoteConsole struct {
			URL string `json:"url"`
		} `json:"remote_console"`
	}
	body := map[string]any{"remote_console": map[string]any{"protocol": "serial", "type": "serial"}}
	if err := c.Do(ctx, http.MethodPost, "/compute/v2.1/servers/"+url.PathEscape(server)+"/remote-consoles", body, &out,
		"X-OpenStack-Nova-API-Version", "2.6"); err != nil {
		return "", err
	}
	if out.RemoteConsole.URL == "" {
		return "", errors.New("get serial console: the answer has no url")
	}
	return out.RemoteConsole.URL, nil
}

// ServerID resolves a server name to its id (an id is returned as is):
// the one server of the project with exactly that name.
func (c *Client) ServerID(ctx context.Context, nameOrID string) (string, error) {
	var one struct {
		Server struct {
			ID string `json:"id"`
		} `json:"server"`
	}
	err := c.Do(ctx, http.MethodGet, "/compute/v2.1/servers/"+url.PathEscape(nameOrID), nil, &one)
	if err == nil {
		return one.Server.ID, nil
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		return "", err
	}
	var list struct {
		Servers []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"servers"`
	}
	if err := c.Do(ctx, http.MethodGet, "/compute/v2.1/servers?name="+url.QueryEscape("^"+nameOrID+"$"), nil, &list); err != nil {
		return "", err
	}
	switch len(list.Servers) {
	case 0:
		return "", fmt.Errorf("no server named or with id %q", nameOrID)
	case 1:
		return list.Servers[0].ID, nil
	}
	return "", fmt.Errorf("%d servers are named %q: give the id", len(list.Servers), nameOrID)
}
