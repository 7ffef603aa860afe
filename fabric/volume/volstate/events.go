package volstate

import "github.com/rackstack/rackstack/fabric/events/eventstate"

// eventResources are how volumes, snapshots and backups appear in the
// event log: every status change, and a volume's attachments.
func eventResources() []eventstate.Resource {
	return []eventstate.Resource{
		{Table: VolumeTable, Type: eventstate.Volume, Describe: func(row any) eventstate.Subject {
			v := row.(*Volume)
			s := eventstate.Subject{ID: v.ID, Project: v.Project, Status: v.Status, Reason: v.Reason}
			if len(v.Attachments) > 0 {
				s.Detail = "attached to server " + v.Attachments[0].ServerID
			}
			return s
		}},
		{Table: SnapshotTable, Type: eventstate.Snapshot, Describe: func(row any) eventstate.Subject {
			s := row.(*Snapshot)
			return eventstate.Subject{ID: s.ID, Project: s.Project, Status: s.Status, Reason: s.Reason}
		}},
		{Table: BackupTable, Type: eventstate.Backup, Describe: func(row any) eventstate.Subject {
			b := row.(*Backup)
			return eventstate.Subject{ID: b.ID, Project: b.Project, Status: b.Status, Reason: b.Reason}
		}},
	}
}
