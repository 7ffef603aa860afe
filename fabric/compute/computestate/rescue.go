package computestate

// Nova's rescue states: a rescue runs with task_state rescuing (the
// server keeps its vm_state, active, stopped or error, until its node
// booted the guest from the rescue disk), then the server is rescued
// (status RESCUE); an unrescue runs with task_state unrescuing until the
// node booted it from its own disk again (ACTIVE).
const (
	VMRescued      = "rescued"
	TaskRescuing   = "rescuing"
	TaskUnrescuing = "unrescuing"

	ActionRescue   = "rescue"
	ActionUnrescue = "unrescue"
)
