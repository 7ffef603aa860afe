package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/fabric/compute"
	"github.com/rackstack/rackstack/node/console"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// openSerialConsoles builds the interactive serial console proxy: this
// node's guests through its hypervisor driver (drv returns nil until the
// node agent is built, and for good where compute is off), the others'
// through their node's peer port. serveSerialConsoles must run once the
// driver is set.
func openSerialConsoles(o *options, node *cluster.Node, drv func() hypervisor.Driver, log *slog.Logger) *console.Proxy {
	return console.New(console.Config{Node: o.Name, Guests: driverGuests{drv}, Peers: node, Log: log})
}

// serveSerialConsoles lets other nodes relay to this node's guests'
// consoles, serial and VNC.
func serveSerialConsoles(node *cluster.Node, p *console.Proxy) {
	for _, k := range []console.Kind{console.Serial, console.VNC} {
		node.HandlePeer(console.PeerPathOf(k), p.PeerHandlerOf(k))
	}
}

// driverGuests finds guests' console sockets with the node's driver.
type driverGuests struct{ drv func() hypervisor.Driver }

func (g driverGuests) Socket(ctx context.Context, id string, kind console.Kind) (string, error) {
	d := g.drv()
	if d == nil {
		return "", fmt.Errorf("no compute on this node: %w", console.ErrNotFound)
	}
	vm, err := d.Adopt(ctx, id)
	if err != nil {
		return "", err
	}
	sock := vm.SerialSocket()
	if kind == console.VNC {
		sock = vm.VNCSocket()
	}
	if sock == "" {
		return "", fmt.Errorf("%s has no %s console socket: %w", id, kind, console.ErrNotFound)
	}
	return sock, nil
}

// serialConsoles adapts the proxy to compute.SerialConsole.
type serialConsoles struct{ p *console.Proxy }

func (s serialConsoles) ServeSerial(w http.ResponseWriter, r *http.Request, sv compute.Server) {
	s.p.Serve(w, r, sv.ID, sv.Host)
}

func (s serialConsoles) ServeVNC(w http.ResponseWriter, r *http.Request, sv compute.Server) {
	s.p.ServeKind(w, r, sv.ID, sv.Host, console.VNC)
}
