package dataplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func (d *Dataplane) linkPin(dev string) string {
	return filepath.Join(d.cfg.PinDir, "links", dev)
}

// adoptLinks loads the TCX links a previous run pinned and points them at
// this run's programs: the attachment never goes away, so neither does the
// forwarding. Links whose device is gone are dropped.
func (d *Dataplane) adoptLinks() error {
	entries, err := os.ReadDir(filepath.Join(d.cfg.PinDir, "links"))
	if err != nil {
		return fmt.Errorf("dataplane: %w", err)
	}
	for _, e := range entries {
		path := filepath.Join(d.cfg.PinDir, "links", e.Name())
		l, err := link.LoadPinnedLink(path, nil)
		if err != nil {
			d.log.Warn("drop unreadable pinned link", "path", path, "err", err)
			os.Remove(path)
			continue
		}
		info, err := l.Info()
		dev, ok := d.lookupDevice(e.Name())
		if err != nil || info.TCX() == nil || !ok || info.TCX().Ifindex != dev.ifindex {
			l.Unpin()
			l.Close()
			continue
		}
		prog := d.progNamed(d.progName(info.Program))
		if err := l.Update(prog); err != nil {
			l.Close()
			return fmt.Errorf("dataplane: update link on %s: %w", e.Name(), err)
		}
		d.links[e.Name()] = l
	}
	return nil
}

// progName is the name of the program with this id (of this run or of an
// earlier one); "" when it cannot be read.
func (d *Dataplane) progName(id ebpf.ProgramID) string {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return ""
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return ""
	}
	return info.Name
}

// progNamed is this run's program of that name; port_in for any other.
func (d *Dataplane) progNamed(name string) *ebpf.Program {
	switch name {
	case "uplink_in":
		return d.objs.UplinkIn
	case "ext_in":
		return d.objs.ExtIn
	case "meta_in":
		return d.objs.MetaIn
	}
	return d.objs.PortIn
}

// syncLinks attaches prog to each device of attach and detaches every
// other device it attached before.
func (d *Dataplane) syncLinks(attach map[string]*ebpf.Program, devs map[string]device) error {
	var errs []error
	for dev, prog := range attach {
		idx := int(devs[dev].ifindex)
		if d.cfg.Clsact {
			if _, ok := d.clsact[dev]; ok && d.clsact[dev] == idx {
				continue
			}
			if err := d.attachClsact(dev, idx, prog); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if l, ok := d.links[dev]; ok {
			if info, err := l.Info(); err == nil && info.TCX() != nil && int(info.TCX().Ifindex) == idx {
				continue
			}
			l.Unpin()
			l.Close()
			delete(d.links, dev)
		}
		var l link.Link
		err := d.inNetns(func() error {
			var err error
			l, err = link.AttachTCX(link.TCXOptions{Interface: idx, Program: prog, Attach: ebpf.AttachTCXIngress})
			return err
		})
		if errors.Is(err, ebpf.ErrNotSupported) {
			d.log.Warn("TCX is not supported here; attaching with clsact")
			d.cfg.Clsact = true
			if err := d.attachClsact(dev, idx, prog); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("attach to %s: %w", dev, err))
			continue
		}
		if err := l.Pin(d.linkPin(dev)); err != nil {
			l.Close()
			errs = append(errs, fmt.Errorf("pin link of %s: %w", dev, err))
			continue
		}
		d.links[dev] = l
	}
	for dev, l := range d.links {
		if _, ok := attach[dev]; ok {
			continue
		}
		l.Unpin()
		l.Close()
		delete(d.links, dev)
	}
	for dev, idx := range d.clsact {
		if _, ok := attach[dev]; !ok {
			d.detachClsact(dev, idx)
		}
	}
	return errors.Join(errs...)
}

// attachClsact is the fallback for kernels without TCX: a cls_bpf filter
// in direct-action mode on the device's clsact ingress hook. Filters live
// in the kernel without pins.
func (d *Dataplane) attachClsact(dev string, ifindex int, prog *ebpf.Program) error {
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := d.nl.QdiscReplace(qdisc); err != nil {
		return fmt.Errorf("clsact on %s: %w", dev, err)
	}
	filter := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: ifindex, Parent: netlink.HANDLE_MIN_INGRESS, Handle: 1, Priority: 1, Protocol: unix.ETH_P_ALL,
		},
		Fd: prog.FD(), Name: "rackstack", DirectAction: true,
	}
	if err := d.nl.FilterReplace(filter); err != nil {
		return fmt.Errorf("cls_bpf on %s: %w", dev, err)
	}
	d.clsact[dev] = ifindex
	return nil
}

func (d *Dataplane) detachClsact(dev string, ifindex int) {
	filter := &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{
		LinkIndex: ifindex, Parent: netlink.HANDLE_MIN_INGRESS, Handle: 1, Priority: 1, Protocol: unix.ETH_P_ALL,
	}}
	if err := d.nl.FilterDel(filter); err != nil {
		d.log.Debug("remove cls_bpf filter", "dev", dev, "err", err)
	}
	delete(d.clsact, dev)
}
