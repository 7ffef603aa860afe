package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	cloudclient "github.com/rackstack/rackstack/fabric/client"
)

// maxCleanObjects bounds how many objects one clean of a project deletes:
// a run writes at most maxCaseObjects per case, and deletes them as it
// goes, so more than this is not a benchmark's leftover.
const maxCleanObjects = 200000

// cleanCloud is `rackbench clean --cloud`: it removes every project named
// rackbench-* that carries the rackbench tag, with its volume and
// export, networks, containers, objects and EC2 credentials — what a killed run left behind.
func cleanCloud(ctx context.Context, o options, stdout io.Writer) error {
	s, err := connectCloud(ctx, o)
	if err != nil {
		return err
	}
	ps, err := call(ctx, func(ctx context.Context) ([]cloudclient.Project, error) { return s.c.ProjectsTagged(ctx, benchTag) })
	if err != nil {
		return fmt.Errorf("list projects: %w", err)
	}
	var errs []error
	n := 0
	for _, p := range ps {
		if !strings.HasPrefix(p.Name, benchPrefix) {
			continue // tagged by someone else: not ours
		}
		if err := cleanProject(ctx, s, p); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
		fmt.Fprintf(stdout, "removed %s\n", p.Name)
	}
	if n == 0 && len(errs) == 0 {
		fmt.Fprintln(stdout, "nothing to remove")
	}
	return errors.Join(errs...)
}

// cleanProject removes a rackbench project: its block volume, its
// network resources, its containers (buckets) with
// their objects, its EC2 credentials, then the project itself (which
// takes its role grants). The project goes only once the rest is gone, so
// that a later clean can still find what this one could not remove.
func cleanProject(ctx context.Context, s *cloudSession, p cloudclient.Project) error {
	if err := cleanVolume(ctx, s, p); err != nil {
		return fmt.Errorf("clean %s: %w", p.Name, err)
	}
	if err := cleanNetworks(ctx, s, p); err != nil {
		return fmt.Errorf("clean %s: %w", p.Name, err)
	}
	hc := &http.Client{Timeout: callTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	swiftURL, err := call(ctx, func(ctx context.Context) (string, error) { return s.c.NodeEndpoint(ctx, "", "object-store") })
	if err != nil {
		return fmt.Errorf("clean %s: %w", p.Name, err)
	}
	base, _, ok := strings.Cut(swiftURL, "/AUTH_")
	if !ok {
		return fmt.Errorf("clean %s: Swift endpoint %q has no AUTH_ account", p.Name, swiftURL)
	}
	account := base + "/AUTH_" + p.ID
	var containers []struct {
		Name string `json:"name"`
	}
	if err := swiftJSON(ctx, s, hc, account+"?format=json", &containers); err != nil {
		return fmt.Errorf("clean %s: list containers: %w", p.Name, err)
	}
	deleted := 0
	for _, c := range containers {
		cu := account + "/" + url.PathEscape(c.Name)
		for deleted < maxCleanObjects {
			var objs []struct {
				Name string `json:"name"`
			}
			if err := swiftJSON(ctx, s, hc, cu+"?format=json&limit=1000", &objs); err != nil {
				return fmt.Errorf("clean %s: list %s: %w", p.Name, c.Name, err)
			}
			if len(objs) == 0 {
				break
			}
			names := make([]string, len(objs))
			for i, o := range objs {
				names[i] = o.Name
			}
			if err := deleteAll(ctx, s, hc, cu, names); err != nil {
				return fmt.Errorf("clean %s: %w", p.Name, err)
			}
			deleted += len(objs)
		}
		if err := swiftDelete(ctx, s, hc, cu); err != nil {
			return fmt.Errorf("clean %s: delete container %s: %w", p.Name, c.Name, err)
		}
	}
	creds, err := call(ctx, s.c.EC2Credentials)
	if err != nil {
		return fmt.Errorf("clean %s: list credentials: %w", p.Name, err)
	}
	for _, k := range creds {
		if k.ProjectID != p.ID {
			continue
		}
		if _, err := call(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, s.c.DeleteCredential(ctx, k.ID) }); err != nil && !isNotFound(err) {
			return fmt.Errorf("clean %s: delete credential %s: %w", p.Name, k.ID, err)
		}
	}
	if _, err := call(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, s.c.DeleteProject(ctx, p.ID) }); err != nil && !isNotFound(err) {
		return fmt.Errorf("clean %s: delete project: %w", p.Name, err)
	}
	return nil
}

// deleteAll deletes the named objects of the container at cu, eight at a
// time.
func deleteAll(ctx context.Context, s *cloudSession, hc *http.Client, cu string, names []string) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, 8)
	for _, n := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := swiftDelete(ctx, s, hc, cu+"/"+(&url.URL{Path: n}).EscapedPath()); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// swiftDelete deletes a Swift object or container; gone already is fine.
func swiftDelete(ctx context.Context, s *cloudSession, hc *http.Client, u string) error {
	tok, err := s.c.Token(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Auth-Token", tok)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("DELETE %s: HTTP %d", u, resp.StatusCode)
	}
	return nil
}

func isNotFound(err error) bool {
	var ae *cloudclient.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// cleanVolume removes the block volume of a rackbench project (block
// --cloud names it after the project, since the block store has no
// projects): its export on any node that serves it, then the volume. A
// node that is not up is not asked: its exports live in its rackd and
// cannot be reached; the volume is deleted all the same.
func cleanVolume(ctx context.Context, s *cloudSession, p cloudclient.Project) error {
	nodes, err := call(ctx, s.c.Nodes)
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	for _, n := range nodes {
		if n.Status != "up" {
			continue
		}
		nc, err := s.nodeClient(ctx, n)
		if err != nil {
			return err
		}
		_, err = call(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, nc.UnexportVolume(ctx, p.Name) })
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("unexport volume %s on %s: %w", p.Name, n.Name, err)
		}
	}
	// Deleting a volume that is not there succeeds: the block store's
	// delete is idempotent.
	if _, err := call(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, s.c.DeleteVolume(ctx, p.Name) }); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete volume %s: %w", p.Name, err)
	}
	return nil
}

// cleanNetworks removes a rackbench project's network resources: each
// bench port on its node, then the ports, security groups, subnets and
// networks, and the project's quotas.
func cleanNetworks(ctx context.Context, s *cloudSession, p cloudclient.Project) error {
	do := func(method, path string, out any) error {
		_, err := call(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, s.c.Do(ctx, method, path, nil, out) })
		if isNotFound(err) && method == http.MethodDelete {
			return nil
		}
		return err
	}
	var ports struct {
		Ports []struct {
			ID      string `json:"id"`
			Project string `json:"project_id"`
			Owner   string `json:"device_owner"`
			Host    string `json:"binding:host_id"`
		} `json:"ports"`
	}
	if err := do(http.MethodGet, "/network/v2.0/ports?project_id="+url.QueryEscape(p.ID), &ports); err != nil {
		return fmt.Errorf("list ports: %w", err)
	}
	for _, pt := range ports.Ports {
		if pt.Project != p.ID {
			continue
		}
		if pt.Owner == benchOwner && pt.Host != "" {
			if err := do(http.MethodDelete, benchPortsPath(pt.Host)+"/"+url.PathEscape(pt.ID), nil); err != nil {
				return fmt.Errorf("remove bench port %s on %s: %w", pt.ID, pt.Host, err)
			}
		}
		if err := do(http.MethodDelete, "/network/v2.0/ports/"+pt.ID, nil); err != nil {
			return fmt.Errorf("delete port %s: %w", pt.ID, err)
		}
	}
	for _, kind := range []struct{ path, key string }{{"security-groups", "security_groups"}, {"subnets", "subnets"}, {"networks", "networks"}} {
		var list map[string][]struct {
			ID      string `json:"id"`
			Project string `json:"project_id"`
		}
		if err := do(http.MethodGet, "/network/v2.0/"+kind.path+"?project_id="+url.QueryEscape(p.ID), &list); err != nil {
			return fmt.Errorf("list %s: %w", kind.path, err)
		}
		for _, x := range list[kind.key] {
			if x.Project != p.ID {
				continue
			}
			if err := do(http.MethodDelete, "/network/v2.0/"+kind.path+"/"+x.ID, nil); err != nil {
				return fmt.Errorf("delete %s %s: %w", kind.path, x.ID, err)
			}
		}
	}
	if err := do(http.MethodDelete, "/network/v2.0/quotas/"+url.PathEscape(p.ID), nil); err != nil {
		return fmt.Errorf("delete quotas: %w", err)
	}
	return nil
}
