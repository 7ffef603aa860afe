package main

import (
	"context"
	"errors"
	"testing"

	"github.com/rackstack/rackstack/node/console"
	"github.com/rackstack/rackstack/node/hypervisor"
)

func TestDriverGuests(t *testing.T) {
	host := hypervisor.NewFakeHost(t.TempDir())
	tests := map[string]struct {
		drv  hypervisor.Driver
		want error
	}{
		// Compute off on this node: no guests here.
		"no driver": {nil, console.ErrNotFound},
		// The guest is not on this node.
		"unknown guest": {host.Driver(), hypervisor.ErrNotFound},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g := driverGuests{func() hypervisor.Driver { return tc.drv }}
			for _, k := range []console.Kind{console.Serial, console.VNC} {
				if _, err := g.Socket(context.Background(), "vm1", k); !errors.Is(err, tc.want) {
					t.Fatalf("Socket %s: %v, want %v", k, err, tc.want)
				}
			}
		})
	}
}
