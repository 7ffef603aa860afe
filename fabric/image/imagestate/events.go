package imagestate

import "github.com/rackstack/rackstack/fabric/events/eventstate"

// eventResources is how images appear in the event log: every status
// change, and a change of who may see them.
func eventResources() []eventstate.Resource {
	return []eventstate.Resource{{Table: Table, Type: eventstate.Image, Describe: func(row any) eventstate.Subject {
		img := row.(*Image)
		return eventstate.Subject{ID: img.ID, Project: img.Owner, Status: img.Status, Detail: "visibility " + img.Visibility}
	}}}
}
