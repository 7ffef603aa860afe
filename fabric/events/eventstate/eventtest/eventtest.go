// Package eventtest writes a resource's events as one line for services'
// tests to compare with what they expect.
package eventtest

import (
	"fmt"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/events/eventstate"
)

// Lines lists the events of resource id as "type action from>to by who
// (reason)", joined by "; ". who is "system" when no user acted; an event
// in another project than home ends with " in PROJECT".
func Lines(tx *memdb.Txn, id, home string) string {
	var out []string
	for _, e := range eventstate.List(tx, eventstate.Filter{ResourceID: id}) {
		who := e.UserID
		if who == "" {
			who = "system"
		}
		s := fmt.Sprintf("%s %s %s>%s by %s", e.ResourceType, e.Action, e.From, e.To, who)
		if e.Reason != "" {
			s += " (" + e.Reason + ")"
		}
		if e.Project != home {
			s += " in " + e.Project
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}
