package computestate

// Nova's moves of a server between hosts: a cold migration (migrate)
// runs as a resize does, with task_state resize_migrating while the
// source node powers the guest off and saves its local disk, then
// resize_finish while the new host starts it, and waits in vm_state
// resized (VERIFY_RESIZE) for its confirm or revert. An evacuation
// rebuilds a server whose host is down on another host.
const (
	TaskResizeMigrating = "resize_migrating"

	ActionMigrate  = "migrate"
	ActionEvacuate = "evacuate"

	// MigrationCold and MigrationEvacuation are Nova's migration_type of
	// the records they open (a resize's is "resize").
	MigrationCold       = "migration"
	MigrationEvacuation = "evacuation"
)
