package ports

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/network/netstate"
)

// A port's extra DHCP options (Neutron's extra_dhcp_opts) as the node's
// DHCP server sends them. Neutron hands the names to dnsmasq; these are
// dnsmasq's names for the options a guest or a PXE client uses, or an
// option's number. An option whose value does not fit its kind is left
// out, as is an IPv6 one (the node answers DHCPv4 only).

type optKind int

const (
	optText optKind = iota
	optAddrs
	optUint16
)

// dhcpOptionCode is the code and value kind of a dnsmasq option name.
func dhcpOptionCode(name string) (uint8, optKind, bool) {
	switch strings.TrimPrefix(name, "option:") {
	case "router":
		return 3, optAddrs, true
	case "dns-server":
		return 6, optAddrs, true
	case "log-server":
		return 7, optAddrs, true
	case "hostname":
		return 12, optText, true
	case "domain-name":
		return 15, optText, true
	case "mtu":
		return 26, optUint16, true
	case "ntp-server":
		return 42, optAddrs, true
	case "tftp-server":
		return 66, optText, true
	case "bootfile-name":
		return 67, optText, true
	case "tftp-server-address":
		return 150, optAddrs, true
	}
	n, err := strconv.Atoi(strings.TrimPrefix(name, "option:"))
	if err != nil || n < 1 || n > 254 {
		return 0, 0, false
	}
	return uint8(n), -1, true // a number: addresses if they parse, else text
}

// addExtraOptions puts the port's IPv4 extra options into the lease.
func addExtraOptions(l *dataplane.Lease, opts []netstate.DHCPOption) {
	for _, o := range opts {
		if o.IPVersion == 6 {
			continue
		}
		if o.Name == "server-ip-address" {
			if a, err := netip.ParseAddr(o.Value); err == nil && a.Is4() {
				l.NextServer = a
			}
			continue
		}
		code, kind, ok := dhcpOptionCode(o.Name)
		if !ok {
			continue
		}
		v, ok := optionValue(o.Value, kind)
		if !ok {
			continue
		}
		l.Extra = append(l.Extra, dataplane.DHCPOption{Code: code, Value: v})
		if code == 67 {
			l.BootFile = o.Value // PXE clients read BOOTP's file field
		}
	}
}

// optionValue encodes value as kind; kind -1 is addresses if value is a
// comma list of IPv4 addresses, else text.
func optionValue(value string, kind optKind) ([]byte, bool) {
	addrs := func() ([]byte, bool) {
		var out []byte
		for _, f := range strings.Split(value, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(f))
			if err != nil || !a.Is4() {
				return nil, false
			}
			b := a.As4()
			out = append(out, b[:]...)
		}
		return out, true
	}
	switch kind {
	case optAddrs:
		return addrs()
	case optUint16:
		n, err := strconv.ParseUint(value, 10, 16)
		if err != nil {
			return nil, false
		}
		return binary.BigEndian.AppendUint16(nil, uint16(n)), true
	case optText:
		return []byte(value), value != ""
	}
	if b, ok := addrs(); ok {
		return b, true
	}
	return []byte(value), value != ""
}
