package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
)

// The veth pairs of a dev cloud's public network and metadata service have
// fixed names in the dataplane's namespace, so two rackd on one host (two
// dev clouds, a test suite beside a developer's cloud) meet there. Each
// pair belongs to the rackd that made it: its host side's alias
// (IFLA_IFALIAS, shown by `ip link`) names that rackd's data dir. A rackd
// takes a pair that is its own, unowned (made before links had owners) or
// whose owner is gone (its data dir removed, or no rackd running on it);
// it never takes one another running rackd owns, and purge removes only
// its own (and orphans).
const linkOwnerPrefix = "rackstack dev cloud "

// linkOwner is the alias naming the data dir as a link's owner.
func linkOwner(dataDir string) string {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	return linkOwnerPrefix + abs
}

// ownerDir is the data dir a link's alias names ("" if none).
func ownerDir(l netlink.Link) string {
	dir, ok := strings.CutPrefix(l.Attrs().Alias, linkOwnerPrefix)
	if !ok {
		return ""
	}
	return dir
}

// ownerRunning says whether a rackd runs on the data dir: it holds bolt's
// flock on the Raft log, which rackd opens before it makes any link.
func ownerRunning(dir string) bool {
	return pidHolding(filepath.Join(dir, "raft", "raft.db"))
}

// ownerGone says whether the data dir a link names no longer exists.
func ownerGone(dir string) bool {
	_, err := os.Stat(dir)
	return errors.Is(err, os.ErrNotExist)
}

// linkInUse is the error of claiming a link another running rackd owns.
type linkInUse struct {
	Link, Owner string
}

func (e *linkInUse) Error() string {
	return fmt.Sprintf("link %s belongs to the rackd running on %s", e.Link, e.Owner)
}

// claimVeth finds or makes the veth pair host/peer, in the namespace the
// thread is in, for the rackd on dataDir, and marks both sides as its own.
// A pair another running rackd owns is left untouched: *linkInUse.
func claimVeth(host, peer, dataDir string) (netlink.Link, netlink.Link, error) {
	me := linkOwner(dataDir)
	h, err := netlink.LinkByName(host)
	switch {
	case errors.As(err, &netlink.LinkNotFoundError{}):
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host}, PeerName: peer}
		if err := netlink.LinkAdd(veth); err != nil {
			return nil, nil, fmt.Errorf("add veth %s: %w", host, err)
		}
		if h, err = netlink.LinkByName(host); err != nil {
			return nil, nil, fmt.Errorf("find %s: %w", host, err)
		}
	case err != nil:
		return nil, nil, fmt.Errorf("find %s: %w", host, err)
	default:
		if dir := ownerDir(h); h.Attrs().Alias != me && dir != "" && ownerRunning(dir) {
			return nil, nil, &linkInUse{Link: host, Owner: dir}
		}
	}
	p, err := netlink.LinkByName(peer)
	if err != nil {
		return nil, nil, fmt.Errorf("find %s: %w", peer, err)
	}
	for _, l := range []netlink.Link{h, p} {
		if l.Attrs().Alias == me {
			continue
		}
		if err := netlink.LinkSetAlias(l, me); err != nil {
			return nil, nil, fmt.Errorf("mark %s as this rackd's: %w", l.Attrs().Name, err)
		}
	}
	return h, p, nil
}
