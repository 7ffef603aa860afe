package revert

import (
	"slices"
	"testing"
)

func TestReverter(t *testing.T) {
	for name, tc := range map[string]struct {
		run  func(r *Reverter, step func(string) func())
		want []string
	}{
		"failure undoes last first": {
			run: func(r *Reverter, step func(string) func()) {
				r.Add(step("a"))
				r.Add(step("b"), step("c"))
				r.Fail()
			},
			want: []string{"c", "b", "a"},
		},
		"success undoes nothing": {
			run: func(r *Reverter, step func(string) func()) {
				r.Add(step("a"))
				r.Success()
				r.Fail()
			},
		},
		"fail runs each undo once": {
			run: func(r *Reverter, step func(string) func()) {
				r.Add(step("a"))
				r.Fail()
				r.Fail()
			},
			want: []string{"a"},
		},
		"steps added after success are undone": {
			run: func(r *Reverter, step func(string) func()) {
				r.Add(step("a"))
				r.Success()
				r.Add(step("b"))
				r.Fail()
			},
			want: []string{"b"},
		},
		"clone keeps the steps for later": {
			run: func(r *Reverter, step func(string) func()) {
				r.Add(step("a"), step("b"))
				later := r.Clone().Fail
				r.Success()
				r.Fail()
				later()
			},
			want: []string{"b", "a"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			var ran []string
			step := func(name string) func() { return func() { ran = append(ran, name) } }
			tc.run(New(), step)
			if !slices.Equal(ran, tc.want) {
				t.Errorf("undo ran %v, want %v", ran, tc.want)
			}
		})
	}
}

// A deferred Fail undoes the steps when the operation panics.
func TestFailUndoesOnPanic(t *testing.T) {
	var undone bool
	func() {
		defer func() { recover() }()
		r := New()
		defer r.Fail()
		r.Add(func() { undone = true })
		panic("step failed")
	}()
	if !undone {
		t.Fatal("a panic after a step did not undo it")
	}
}
