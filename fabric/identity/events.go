package identity

import (
	"fmt"

	"github.com/rackstack/rackstack/fabric/events/eventstate"
)

// eventResources are how identity's rows appear in the event log. None
// belongs to a project (a project's own row included): who may do what is
// the cloud's business, so only admins read these events. No detail
// holds a secret: a user's password hash is compared (a change of it is
// an event, "password changed") and never recorded, and a credential's
// blob (an EC2 secret) is not read at all.
func eventResources() []eventstate.Resource {
	return []eventstate.Resource{
		{Table: tDomains, Type: eventstate.Domain, Describe: func(row any) eventstate.Subject {
			d := row.(*Domain)
			return eventstate.Subject{ID: d.ID, Status: enabledStatus(d.Enabled), Detail: d.Name}
		}},
		{Table: tProjects, Type: eventstate.Project, Describe: func(row any) eventstate.Subject {
			p := row.(*Project)
			detail := fmt.Sprintf("%s in domain %s", p.Name, p.DomainID)
			if p.ParentID != p.DomainID {
				detail += " under project " + p.ParentID
			}
			return eventstate.Subject{ID: p.ID, Status: enabledStatus(p.Enabled), Detail: detail}
		}},
		{Table: tUsers, Type: eventstate.User, SecretChange: "password changed", Describe: func(row any) eventstate.Subject {
			u := row.(*User)
			detail := fmt.Sprintf("%s in domain %s", u.Name, u.DomainID)
			if u.DefaultProjectID != "" {
				detail += ", default project " + u.DefaultProjectID
			}
			return eventstate.Subject{ID: u.ID, Status: enabledStatus(u.Enabled), Detail: detail, Secret: string(u.PasswordHash)}
		}},
		{Table: tGroups, Type: eventstate.Group, Describe: func(row any) eventstate.Subject {
			g := row.(*Group)
			return eventstate.Subject{ID: g.ID, Detail: fmt.Sprintf("%s in domain %s", g.Name, g.DomainID)}
		}},
		{Table: tMembers, Type: eventstate.GroupMembership, Create: "add", Delete: "remove", Describe: func(row any) eventstate.Subject {
			m := row.(*Membership)
			return eventstate.Subject{ID: m.ID, Detail: fmt.Sprintf("user %s in group %s", m.UserID, m.GroupID)}
		}},
		{Table: tRoles, Type: eventstate.Role, Describe: func(row any) eventstate.Subject {
			r := row.(*Role)
			if r.DomainID != "" {
				return eventstate.Subject{ID: r.ID, Detail: fmt.Sprintf("%s in domain %s", r.Name, r.DomainID)}
			}
			return eventstate.Subject{ID: r.ID, Detail: r.Name}
		}},
		{Table: tImplies, Type: eventstate.RoleImplication, Describe: func(row any) eventstate.Subject {
			i := row.(*Implication)
			return eventstate.Subject{ID: i.ID, Detail: fmt.Sprintf("role %s implies role %s", i.Prior, i.Implied)}
		}},
		{Table: tAssignments, Type: eventstate.RoleAssignment, Create: "grant", Delete: "revoke", Describe: func(row any) eventstate.Subject {
			a := row.(*Assignment)
			detail := fmt.Sprintf("role %s to %s %s on %s %s", a.RoleID, a.ActorType, a.ActorID, a.ScopeType, a.ScopeID)
			if a.Inherited {
				detail += ", inherited to its projects"
			}
			return eventstate.Subject{ID: a.ID, Detail: detail}
		}},
		{Table: tCredentials, Type: eventstate.Credential, Describe: func(row any) eventstate.Subject {
			c := row.(*Credential)
			detail := fmt.Sprintf("%s credential of user %s", c.Type, c.UserID)
			if c.ProjectID != "" {
				detail += " for project " + c.ProjectID
			}
			return eventstate.Subject{ID: c.ID, Detail: detail}
		}},
		{Table: tRegions, Type: eventstate.Region, Describe: func(row any) eventstate.Subject {
			r := row.(*Region)
			return eventstate.Subject{ID: r.ID, Detail: r.Description}
		}},
		{Table: tServices, Type: eventstate.Service, Describe: func(row any) eventstate.Subject {
			s := row.(*ServiceRow)
			return eventstate.Subject{ID: s.ID, Status: enabledStatus(s.Enabled), Detail: s.Type + " " + s.Name}
		}},
		{Table: tEndpoints, Type: eventstate.Endpoint, Describe: func(row any) eventstate.Subject {
			e := row.(*Endpoint)
			return eventstate.Subject{ID: e.ID, Status: enabledStatus(e.Enabled), Detail: fmt.Sprintf("%s %s of service %s in region %s", e.Interface, e.URL, e.ServiceID, e.RegionID)}
		}},
	}
}

func enabledStatus(enabled bool) string {
	if enabled {
		return "enabled"
	}
	return "disabled"
}
