package object

import "github.com/rackstack/rackstack/fabric/events/eventstate"

// containerEvents is how containers (and buckets) appear in the event
// log: their creation and deletion, and a change of who may read or
// write them. A container has no status, and its object and byte counts
// change with every write: they are not events.
func containerEvents() eventstate.Resource {
	return eventstate.Resource{Table: tContainers, Type: eventstate.Container, Describe: func(row any) eventstate.Subject {
		c := row.(*Container)
		s := eventstate.Subject{ID: c.ID, Project: c.Project}
		if c.ReadACL != "" {
			s.Detail = "read ACL " + c.ReadACL
		}
		if c.WriteACL != "" {
			if s.Detail != "" {
				s.Detail += ", "
			}
			s.Detail += "write ACL " + c.WriteACL
		}
		return s
	}}
}
