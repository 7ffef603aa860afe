package dataplane

import (
	"time"

	"github.com/rackstack/rackstack/bpf"
	"github.com/rackstack/rackstack/dataplane/ndp"
)

// raInterval is how often routers advertise themselves unsolicited: well
// within the router lifetime they give (1800 s, ra_reply's), so that a
// guest that solicited once, at boot, keeps its default route and its
// prefix's lifetimes are renewed (RFC 4861's MaxRtrAdvInterval is 600 s).
const raInterval = 200 * time.Second

// advertise sends, every RAInterval, each network's router advertisement
// (ras) to every local port of it, as port_in answers a solicitation but
// to all nodes. Verify calls it, with d.mu held.
func (d *Dataplane) advertise() {
	every := d.cfg.RAInterval
	if every <= 0 {
		every = raInterval
	}
	if time.Since(d.lastRA) < every {
		return
	}
	d.lastRA = time.Now()
	for ifindex, p := range d.cur.ports {
		ra, ok := d.cur.l3v6.ras[p.Vlan]
		if !ok {
			continue
		}
		if err := d.inNetns(func() error { return sendRA(int(ifindex), ra) }); err != nil {
			d.log.Warn("advertise the router", "ifindex", ifindex, "err", err)
		}
	}
}

// raFrame is ra as ra_reply in bpf/dataplane.c builds it, to ff02::1:
// the router for 1800 s, the prefix valid 86400 s and preferred 14400 s.
func raFrame(ra bpf.DataplaneRa) []byte {
	return ndp.RA{
		MAC: ra.Mac, LLA: ra.Lla, Flags: ra.Flags, Lifetime: 1800, MTU: ra.Mtu,
		Prefix: &ndp.Prefix{Prefix: ra.Prefix, Len: ra.Plen, Flags: ra.Pflags, Valid: 86400, Preferred: 14400},
	}.Frame()
}

// sendRA sends ra out of the device to the guest behind it.
func sendRA(ifindex int, ra bpf.DataplaneRa) error { return ndp.Send(ifindex, raFrame(ra)) }
