// Package scheduler picks the node for a new server, as Nova's filter
// scheduler does: filters drop the hosts that cannot take it (node down,
// availability zone, vCPU, RAM and disk with overcommit ratios, server
// group policy), weighers order the rest (spread by default, pack on
// request, soft group policies). It is pure: the caller hands it a
// snapshot of hosts read in the same Raft apply that records the choice,
// so two servers never claim the same capacity.
package scheduler

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Host is a node as the scheduler sees it.
type Host struct {
	Name string
	Up   bool
	// NoCompute: the node runs no compute service, so no server goes
	// there (Nova's ComputeFilter).
	NoCompute bool
	AZ        string
	VCPUs     int // physical
	MemoryMB  int
	DiskGB    int
	// Used is what servers placed here claim.
	UsedVCPUs, UsedMemoryMB, UsedDiskGB int
	// Servers are the ids of the servers placed here.
	Servers []string
}

// Group is a server group the new server joins.
type Group struct {
	Policy  string   // affinity, anti-affinity, soft-affinity, soft-anti-affinity
	Members []string // server ids already in it
	// MaxPerHost bounds members per host for anti-affinity (Nova's
	// max_server_per_host rule); 0 means 1.
	MaxPerHost int
}

// Request is what a new server needs.
type Request struct {
	VCPUs    int
	MemoryMB int
	DiskGB   int
	AZ       string // "" = any
	Host     string // "" = any; an admin's forced host
	Group    *Group
}

// Config holds the overcommit ratios and the weighing strategy.
type Config struct {
	CPURatio  float64 // default 4.0, Nova's initial_cpu_allocation_ratio
	RAMRatio  float64 // default 1.0
	DiskRatio float64 // default 1.0
	// ReservedMemoryMB is kept for the node itself (Nova's
	// reserved_host_memory_mb); default 512.
	ReservedMemoryMB int
	Pack             bool // fill hosts up instead of spreading
}

func (c Config) withDefaults() Config {
	if c.CPURatio <= 0 {
		c.CPURatio = 4
	}
	if c.RAMRatio <= 0 {
		c.RAMRatio = 1
	}
	if c.DiskRatio <= 0 {
		c.DiskRatio = 1
	}
	if c.ReservedMemoryMB == 0 {
		c.ReservedMemoryMB = 512
	}
	return c
}

// ErrNoValidHost is Nova's "No valid host was found".
var ErrNoValidHost = errors.New("No valid host was found.")

// NoValidHost says why each host was dropped.
type NoValidHost struct {
	Reasons map[string]string // host → the first filter that dropped it
}

func (e *NoValidHost) Error() string {
	if len(e.Reasons) == 0 {
		return "No valid host was found. There are no hosts."
	}
	names := make([]string, 0, len(e.Reasons))
	for n := range e.Reasons {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, n+": "+e.Reasons[n])
	}
	return "No valid host was found. " + strings.Join(parts, "; ")
}

func (e *NoValidHost) Is(target error) bool { return target == ErrNoValidHost }

// Select returns the host for req, or a *NoValidHost.
func Select(hosts []Host, req Request, cfg Config) (string, error) {
	cfg = cfg.withDefaults()
	groupHosts := map[string]int{} // host → members of the group on it
	if req.Group != nil {
		member := map[string]bool{}
		for _, id := range req.Group.Members {
			member[id] = true
		}
		for _, h := range hosts {
			for _, s := range h.Servers {
				if member[s] {
					groupHosts[h.Name]++
				}
			}
		}
	}
	rejected := map[string]string{}
	var pass []Host
	for _, h := range hosts {
		if why := filter(h, req, cfg, groupHosts); why != "" {
			rejected[h.Name] = why
			continue
		}
		pass = append(pass, h)
	}
	if len(pass) == 0 {
		return "", &NoValidHost{Reasons: rejected}
	}
	sort.SliceStable(pass, func(i, j int) bool {
		wi, wj := weigh(pass[i], req, cfg, groupHosts), weigh(pass[j], req, cfg, groupHosts)
		if wi != wj {
			return wi > wj
		}
		return pass[i].Name < pass[j].Name
	})
	return pass[0].Name, nil
}

// filter returns why h cannot take req, or "".
func filter(h Host, req Request, cfg Config, groupHosts map[string]int) string {
	switch {
	case !h.Up:
		return "node is down"
	case h.NoCompute:
		return "node runs no compute service"
	case req.Host != "" && h.Name != req.Host:
		return "not the requested host"
	case req.AZ != "" && h.AZ != req.AZ:
		return fmt.Sprintf("in availability zone %q, not %q", h.AZ, req.AZ)
	}
	if free := int(float64(h.VCPUs)*cfg.CPURatio) - h.UsedVCPUs; req.VCPUs > free {
		return fmt.Sprintf("%d vCPUs free, %d needed", max(free, 0), req.VCPUs)
	}
	if free := int(float64(h.MemoryMB-cfg.ReservedMemoryMB)*cfg.RAMRatio) - h.UsedMemoryMB; req.MemoryMB > free {
		return fmt.Sprintf("%d MB RAM free, %d needed", max(free, 0), req.MemoryMB)
	}
	if free := int(float64(h.DiskGB)*cfg.DiskRatio) - h.UsedDiskGB; req.DiskGB > free {
		return fmt.Sprintf("%d GB disk free, %d needed", max(free, 0), req.DiskGB)
	}
	if req.Group != nil {
		on := groupHosts[h.Name]
		switch req.Group.Policy {
		case "affinity":
			if len(groupHosts) > 0 && on == 0 {
				return "affinity: the group's servers are on another host"
			}
		case "anti-affinity":
			limit := req.Group.MaxPerHost
			if limit <= 0 {
				limit = 1
			}
			if on >= limit {
				return fmt.Sprintf("anti-affinity: %d of the group's servers already here", on)
			}
		}
	}
	return ""
}

// weigh ranks a host that passed: soft group policies first, then free
// RAM (spread) or used RAM (pack).
func weigh(h Host, req Request, cfg Config, groupHosts map[string]int) float64 {
	w := 0.0
	if req.Group != nil {
		switch req.Group.Policy {
		case "soft-affinity":
			w += 1e9 * float64(groupHosts[h.Name])
		case "soft-anti-affinity":
			w -= 1e9 * float64(groupHosts[h.Name])
		}
	}
	free := float64(h.MemoryMB-cfg.ReservedMemoryMB)*cfg.RAMRatio - float64(h.UsedMemoryMB)
	if cfg.Pack {
		return w - free
	}
	return w + free
}
