// Package revert undoes the finished steps of a multi-step side effect
// (start a VM, create a volume, deploy a server) when a later step fails,
// the way Incus's shared/revert does:
//
//	r := revert.New()
//	defer r.Fail()
//	if err := makeDir(); err != nil {
//		return err
//	}
//	r.Add(removeDir)
//	…
//	r.Success()
//	return nil
//
// Undo steps run last first, so each sees the world as it was just after
// its own step. The deferred Fail also runs them when a step panics.
//
// It imports nothing of ours, so any layer may use it. Undo steps must not
// be Raft proposals whose outcome is unknown: an operation that may have
// happened is not undone as if it had failed.
package revert

// Reverter holds the undo steps of one operation. It is not safe for
// concurrent use; an operation owns its reverter.
type Reverter struct {
	undo []func()
}

// New returns a Reverter with nothing to undo.
func New() *Reverter { return &Reverter{} }

// Add records undo steps for the step just done.
func (r *Reverter) Add(undo ...func()) { r.undo = append(r.undo, undo...) }

// Fail runs the recorded undo steps, last first, unless Success was called.
// It runs them once: a second Fail does nothing.
func (r *Reverter) Fail() {
	undo := r.undo
	r.undo = nil
	for i := len(undo) - 1; i >= 0; i-- {
		undo[i]()
	}
}

// Success says the operation finished: Fail does nothing from now on.
func (r *Reverter) Success() { r.undo = nil }

// Clone returns a Reverter holding the same undo steps. An operation that
// hands its caller a way to undo it later returns r.Clone().Fail and then
// calls r.Success.
func (r *Reverter) Clone() *Reverter {
	return &Reverter{undo: append([]func(){}, r.undo...)}
}
