package qemu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/hypervisor/qmp"
)

var _ hypervisor.NICHotplug = (*vm)(nil)

// A plugged NIC is a virtio-net-pci device "hnic-<tap>" in one of the
// VM's hot-plug root ports (shared with plugged disks), on a tap netdev
// "hnet-<tap>" set up as the boot NICs' are (buildArgs). The ids carry
// the tap, so a restarted driver knows a plugged NIC's tap from the
// running VM alone, and its MAC from the device's "mac" property.
func hotNICDevice(tap string) string { return "hnic-" + tap }
func hotNetdev(tap string) string    { return "hnet-" + tap }

func checkNIC(n hypervisor.NIC) error {
	spec := hypervisor.VMSpec{ID: "nic", VCPUs: 1, MemoryMB: 1, NICs: []hypervisor.NIC{n}}
	return spec.Validate()
}

// AttachNIC implements hypervisor.NICHotplug.
func (v *vm) AttachNIC(ctx context.Context, n hypervisor.NIC) error {
	if err := checkNIC(n); err != nil {
		return err
	}
	hw, _ := net.ParseMAC(n.MAC)
	spec, err := readSpec(v.p.spec)
	if err != nil {
		return fmt.Errorf("attach nic %s: %w", v.id, err)
	}
	boot := slices.IndexFunc(spec.NICs, func(b hypervisor.NIC) bool { return b.Tap == n.Tap })
	return v.hotCommand(ctx, "attach nic", func(c *qmp.Client) error {
		if boot >= 0 {
			// A boot NIC is there: its link goes up (again, if a
			// detach set it down).
			if err := c.Execute(ctx, "set_link", map[string]any{"name": "nic" + strconv.Itoa(boot), "up": true}, nil); err != nil {
				return fmt.Errorf("set the link of nic %s up: %w", n.Tap, err)
			}
			return nil
		}
		devs, err := peripherals(ctx, c)
		if err != nil {
			return err
		}
		if devs[hotNICDevice(n.Tap)] {
			return nil
		}
		// Leftovers of a plug that failed half-way go first.
		_ = c.Execute(ctx, "netdev_del", map[string]any{"id": hotNetdev(n.Tap)}, nil)
		slot := freeSlot(ctx, c, devs)
		if slot == "" {
			return hypervisor.ErrNoHotplugSlot
		}
		// As the boot NICs: no vhost, the tap is ours (no scripts).
		if err := c.Execute(ctx, "netdev_add", map[string]any{"type": "tap", "id": hotNetdev(n.Tap), "ifname": n.Tap,
			"script": "no", "downscript": "no", "vhost": false}, nil); err != nil {
			return fmt.Errorf("open tap %s: %w", n.Tap, err)
		}
		// addr 0 of a free root port, as for a disk (see AttachDisk).
		if err := c.Execute(ctx, "device_add", map[string]any{"driver": "virtio-net-pci", "id": hotNICDevice(n.Tap),
			"netdev": hotNetdev(n.Tap), "mac": hw.String(), "bus": slot, "addr": "0", "romfile": ""}, nil); err != nil {
			_ = c.Execute(ctx, "netdev_del", map[string]any{"id": hotNetdev(n.Tap)}, nil)
			return fmt.Errorf("plug nic %s: %w", n.Tap, err)
		}
		return nil
	})
}

// DetachNIC implements hypervisor.NICHotplug: device_del, the wait for
// the guest's DEVICE_DELETED, then the netdev goes (closing the tap).
// A boot NIC ("nic<i>" on the root bus, which takes no unplug) gets its
// link set down.
func (v *vm) DetachNIC(ctx context.Context, tap string) error {
	if err := checkNIC(hypervisor.NIC{Tap: tap, MAC: "02:00:00:00:00:01"}); err != nil {
		return err
	}
	spec, err := readSpec(v.p.spec)
	if err != nil {
		return fmt.Errorf("detach nic %s: %w", v.id, err)
	}
	boot := slices.IndexFunc(spec.NICs, func(b hypervisor.NIC) bool { return b.Tap == tap })
	return v.hotCommand(ctx, "detach nic", func(c *qmp.Client) error {
		if boot >= 0 {
			if err := c.Execute(ctx, "set_link", map[string]any{"name": "nic" + strconv.Itoa(boot), "up": false}, nil); err != nil {
				return fmt.Errorf("set the link of nic %s down: %w", tap, err)
			}
			return fmt.Errorf("detach nic %s: %w", tap, hypervisor.ErrBootNIC)
		}
		if err := unplugDevice(ctx, c, hotNICDevice(tap), "nic "+tap); err != nil {
			return err
		}
		err = c.Execute(ctx, "netdev_del", map[string]any{"id": hotNetdev(tap)}, nil)
		var qerr *qmp.Error
		if err != nil && !(errors.As(err, &qerr) && qerr.Class == "DeviceNotFound") && !strings.Contains(err.Error(), "not found") {
			return fmt.Errorf("close tap %s: %w", tap, err)
		}
		return nil
	})
}

// NICs implements hypervisor.NICHotplug: the spec's NICs, then the
// plugged ones the running VM has.
func (v *vm) NICs(ctx context.Context) ([]hypervisor.GuestNIC, error) {
	spec, err := readSpec(v.p.spec)
	if err != nil {
		return nil, fmt.Errorf("list nics %s: %w", v.id, err)
	}
	var out []hypervisor.GuestNIC
	for _, n := range spec.NICs {
		out = append(out, hypervisor.GuestNIC{NIC: n})
	}
	err = v.hotCommand(ctx, "list nics", func(c *qmp.Client) error {
		devs, err := peripherals(ctx, c)
		if err != nil {
			return err
		}
		var taps []string
		for d := range devs {
			if tap, ok := strings.CutPrefix(d, "hnic-"); ok {
				taps = append(taps, tap)
			}
		}
		slices.Sort(taps)
		for _, tap := range taps {
			var mac string
			if err := c.Execute(ctx, "qom-get", map[string]any{"path": "/machine/peripheral/" + hotNICDevice(tap), "property": "mac"}, &mac); err != nil {
				return fmt.Errorf("read the mac of nic %s: %w", tap, err)
			}
			out = append(out, hypervisor.GuestNIC{NIC: hypervisor.NIC{Tap: tap, MAC: mac}, Hot: true})
		}
		return nil
	})
	return out, err
}
