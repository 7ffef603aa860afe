package instances

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// nicDetachWait bounds one pass's wait for a guest to let go of a NIC;
// a guest slower than that is asked again on the next pass.
const nicDetachWait = 20 * time.Second

// syncNICs makes a running (or paused) guest's NICs the server's ports
// (Nova's os-interface): a port attached since the guest started is
// plugged on its tap, which the ports agent wires into the dataplane as
// a boot port's; a plugged NIC whose port was detached is unplugged and
// its tap removed. The guest's NICs are read from the running VM, so a
// restarted rackd finds what it plugged. A NIC the guest booted with
// cannot be unplugged (QEMU's q35 root bus): its link goes down and it
// is gone at the next start. Failures are logged and retried on the
// next pass; they never stop the server's state from being reported.
//
// A paused guest gets its new NICs (it sees them when it runs again) but
// is not asked to let one go: it could not answer until it runs.
func (a *Agent) syncNICs(ctx context.Context, s computestate.Server, view *netstate.View, vm hypervisor.VM, rec *record, running bool) {
	hp, ok := vm.(hypervisor.NICHotplug)
	if !ok {
		return
	}
	if a.nicsInSync(s, vm, rec) {
		return
	}
	synced := true // every port's NIC as it should be, after this pass
	defer func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if synced && a.nicsSynced != nil {
			a.nicsSynced[s.ID] = nicSync{pid: vm.PID(), ports: slices.Clone(s.Ports)}
		} else {
			delete(a.nicsSynced, s.ID)
		}
	}()
	have, err := hp.NICs(ctx)
	if err != nil {
		a.Log.Warn("compute: list the guest's nics", "server", s.ID, "err", err)
		synced = false
		return
	}
	ports := map[string]netstate.Port{}
	for _, p := range view.Ports {
		ports[p.ID] = p
	}
	want := map[string]bool{}
	changed := false
	for _, id := range s.Ports {
		tap := dataplane.DeviceName(id)
		want[tap] = true
		if slices.ContainsFunc(have, func(n hypervisor.GuestNIC) bool { return n.Tap == tap }) {
			if !slices.Contains(rec.DownTaps, tap) {
				continue
			}
			// A boot NIC detached and attached again: link up.
			if err := hp.AttachNIC(ctx, hypervisor.NIC{Tap: tap, MAC: ports[id].MAC}); err != nil {
				a.Log.Warn("compute: set the link of a re-attached port up", "server", s.ID, "port", id, "tap", tap, "err", err)
				synced = false
				continue
			}
			rec.DownTaps = slices.DeleteFunc(rec.DownTaps, func(t string) bool { return t == tap })
			changed = true
			continue
		}
		p, ok := ports[id]
		if !ok {
			synced = false
			continue // not (yet) in this node's view
		}
		if err := a.Taps.Ensure(tap); err != nil {
			a.Log.Warn("compute: make the tap of an attached port", "server", s.ID, "port", id, "tap", tap, "err", err)
			synced = false
			continue
		}
		if !slices.Contains(rec.Taps, tap) {
			rec.Taps = append(rec.Taps, tap)
			changed = true
		}
		if err := hp.AttachNIC(ctx, hypervisor.NIC{Tap: tap, MAC: p.MAC}); err != nil {
			a.Log.Warn("compute: plug the nic of an attached port", "server", s.ID, "port", id, "tap", tap, "err", err)
			synced = false
			continue
		}
		a.Log.Info("compute: plugged a nic", "server", s.ID, "port", id, "tap", tap, "mac", p.MAC)
	}
	for _, n := range have {
		if want[n.Tap] {
			continue
		}
		if !running {
			synced = false // let go of once it runs
			continue
		}
		if slices.Contains(rec.DownTaps, n.Tap) {
			continue // already down
		}
		dctx, cancel := context.WithTimeout(ctx, nicDetachWait)
		err := hp.DetachNIC(dctx, n.Tap)
		cancel()
		switch {
		case errors.Is(err, hypervisor.ErrBootNIC):
			rec.DownTaps = append(rec.DownTaps, n.Tap)
			changed = true
			a.Log.Warn("compute: a detached port's nic was there at boot and cannot be unplugged; its link is down until the next start",
				"server", s.ID, "tap", n.Tap)
			continue
		case err != nil:
			a.Log.Warn("compute: unplug the nic of a detached port", "server", s.ID, "tap", n.Tap, "err", err)
			synced = false
			continue
		}
		if err := a.Taps.Remove(n.Tap); err != nil {
			a.Log.Warn("compute: remove the tap of a detached port", "server", s.ID, "tap", n.Tap, "err", err)
			synced = false
			continue
		}
		rec.Taps = slices.DeleteFunc(rec.Taps, func(t string) bool { return t == n.Tap })
		changed = true
		a.Log.Info("compute: unplugged a nic", "server", s.ID, "tap", n.Tap)
	}
	if changed {
		if err := a.writeRecord(s.ID, *rec); err != nil {
			a.Log.Warn("compute: record the server's taps", "server", s.ID, "err", err)
		}
	}
}

// nicSync is a guest process and the ports its NICs matched.
type nicSync struct {
	pid   int
	ports []string
}

// nicsInSync says whether s's guest is the process whose NICs last
// matched s's ports in full, with no boot NIC held down: then nothing
// can have changed them but this agent.
func (a *Agent) nicsInSync(s computestate.Server, vm hypervisor.VM, rec *record) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	last, ok := a.nicsSynced[s.ID]
	return ok && len(rec.DownTaps) == 0 && last.pid == vm.PID() && slices.Equal(last.ports, s.Ports)
}
