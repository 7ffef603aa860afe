package compute

import (
	"context"
	"net/http"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
)

// Nova's addSecurityGroup and removeSecurityGroup: a security group of
// the server's project, by name or id, added to (removed from) every
// port of the server through the network service, whose dataplane
// enforces the ports' groups. The server's security_groups follow.

// SecurityGroupPorts is what the two actions need of the network service
// beside Ports; a Ports without it leaves them not implemented (501).
type SecurityGroupPorts interface {
	// SecurityGroup finds project's group by name or id: not found, or a
	// conflict when several of its groups have the name.
	SecurityGroup(ctx context.Context, project, nameOrID string) (id, name string, err error)
	// SetPortSecurityGroup adds (on) or removes a group on a port;
	// changed is false when the port already had (lacked) it.
	SetPortSecurityGroup(ctx context.Context, portID, groupID string, on bool) (changed bool, err error)
	// SecurityGroups lists project's groups ("" : all) with their rules.
	SecurityGroups(ctx context.Context, project string) ([]SecurityGroupInfo, error)
}

// SecurityGroupInfo is a security group as Nova's proxy shows it.
type SecurityGroupInfo struct {
	ID, Name, Description, Project string
	Rules                          []SecurityGroupRuleInfo
}

// SecurityGroupRuleInfo is a rule of a security group: Protocol "" is
// any, RemoteIPPrefix "" any address.
type SecurityGroupRuleInfo struct {
	ID, Direction, Protocol, RemoteIPPrefix, RemoteGroupID string
	PortMin, PortMax                                       *int
}

// readGroupName reads {"<action>": {"name": "..."}} as Nova's
// security-group actions do.
func readGroupName(key string, arg any) (string, error) {
	m, ok := arg.(map[string]any)
	if !ok {
		return "", badField(key, arg, "Missing parameter dict")
	}
	v, present := m["name"]
	if !present {
		return "", missing("name")
	}
	name, ok := v.(string)
	if !ok || strings.TrimSpace(name) == "" {
		return "", badField("name", v, "Security group name cannot be empty")
	}
	return name, nil
}

func (s *Service) serverSecurityGroup(w http.ResponseWriter, r *http.Request, key string, arg any) error {
	add := key == "addSecurityGroup"
	rule := "os_compute_api:os-security-groups:remove"
	if add {
		rule = "os_compute_api:os-security-groups:add"
	}
	sv, err := s.readServer(r, rule)
	if err != nil {
		return err
	}
	name, err := readGroupName(key, arg)
	if err != nil {
		return err
	}
	sgp, ok := s.cfg.Ports.(SecurityGroupPorts)
	if !ok {
		return notImplemented("The server action %s is not implemented by this cloud.", key)
	}
	if len(sv.Ports) == 0 {
		return notFound("instance_id %s could not be found as device id on any ports", sv.ID)
	}
	ctx := r.Context()
	gid, gname, err := sgp.SecurityGroup(ctx, sv.Project, name)
	if err != nil {
		return err
	}
	changed := 0
	for _, port := range sv.Ports {
		c, err := sgp.SetPortSecurityGroup(ctx, port, gid, add)
		if err != nil {
			return err
		}
		if c {
			changed++
		}
	}
	if changed == 0 {
		if add {
			return badRequest("Security group %s is already associated with the instance %s", name, sv.ID)
		}
		return notFound("Security group %s not associated with the instance %s", name, sv.ID)
	}
	c := serverUpdateCmd{ID: sv.ID, Now: s.now()}
	if add {
		c.AddGroup = gname
	} else {
		c.RemoveGroup = gname
	}
	if _, err := api.Propose(ctx, s.cfg.Repl, cmdServerUpdate, c, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
