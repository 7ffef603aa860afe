package dataplane

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/rackstack/rackstack/bpf"
)

// QoS is what a port's QoS policy asks of the dataplane (Neutron's
// bandwidth_limit, packet_rate_limit and dscp_marking rules), enforced in
// port_in and on delivery to the port (bpf/qos.h).
type QoS struct {
	// Egress limits what the port sends, Ingress what it receives; a zero
	// Kbps is no limit.
	Egress, Ingress Limit
	// Mark says what the port sends over IPv4 or IPv6 has its DSCP set to
	// DSCP (0-63), keeping the ECN bits.
	Mark bool
	DSCP uint8
}

// Limit is one direction's limits: a token bucket filled at Kbps
// kilobits per second, BurstKbits deep (0: 80% of Kbps, Neutron's
// default), and one filled at Kpps thousand packets per second,
// BurstKpackets deep (0: 80% of Kpps). A zero rate is no limit of its
// kind; a frame passes only within both.
type Limit struct {
	Kbps, BurstKbits    uint64
	Kpps, BurstKpackets uint64
}

const (
	flagQoS = 32
	qosDSCP = 1
	// minBurstBytes is the smallest bucket: a frame bigger than the bucket
	// would never pass, and with segmentation offloads a port's frames
	// are up to 64 KiB (a GSO packet) plus its headers.
	minBurstBytes = 64<<10 + 1024
	// minBurstPackets is the smallest packet bucket, for the same reason:
	// a GSO frame costs its segments, up to 64 of them.
	minBurstPackets = 64
)

// qosCfg compiles q into the port's qos map entry; ok is false when q asks
// for nothing.
func qosCfg(q *QoS) (cfg bpf.DataplaneQosCfg, ok bool) {
	if q == nil {
		return cfg, false
	}
	for dir, l := range map[int]Limit{dirIn: q.Ingress, dirOut: q.Egress} {
		if l.Kbps != 0 {
			rate := l.Kbps * 125 // bytes per second
			burst := l.BurstKbits * 125
			if l.BurstKbits == 0 {
				burst = rate * 8 / 10
			}
			cfg.Rate[dir], cfg.Depth[dir] = rate, depthNS(max(burst, minBurstBytes), rate)
			ok = true
		}
		if l.Kpps != 0 {
			pps := l.Kpps * 1000
			burst := l.BurstKpackets * 1000
			if l.BurstKpackets == 0 {
				burst = pps * 8 / 10
			}
			cfg.Pcost[dir] = max(uint64(1e9)/pps, 1)
			cfg.Pdepth[dir] = depthNS(max(burst, minBurstPackets), pps)
			ok = true
		}
	}
	if q.Mark {
		cfg.Flags |= qosDSCP
		cfg.Dscp = q.DSCP & 63
		ok = true
	}
	return cfg, ok
}

// depthNS is a bucket of burst units at rate units per second, in
// nanoseconds of that rate (in float64: burst * 1e9 overflows uint64 for
// the largest rates Neutron takes).
func depthNS(burst, rate uint64) uint64 {
	return uint64(min(float64(burst)/float64(rate)*1e9, 1<<62))
}

// deleteQoS removes the qos entries want no longer has (after the ports
// that pointed at them; writeTables adds them before), each with its
// policers' buckets, so a port that loses its limit and later gains one
// starts with a full bucket.
func (d *Dataplane) deleteQoS(cur, want map[uint32]bpf.DataplaneQosCfg) error {
	if err := deleteMap(d.objs.Qos, cur, want); err != nil {
		return err
	}
	for ifindex := range cur {
		if _, ok := want[ifindex]; ok {
			continue
		}
		for _, dir := range []uint32{dirIn, dirOut} {
			k := bpf.DataplaneQosBkey{Ifindex: ifindex, Dir: dir}
			if err := d.objs.QosBuckets.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("%s: delete: %w", d.objs.QosBuckets, err)
			}
		}
	}
	return nil
}
