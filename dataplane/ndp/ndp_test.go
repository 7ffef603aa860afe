package ndp

import (
	"net/netip"
	"testing"
)

func TestLinkLocal(t *testing.T) {
	got := netip.AddrFrom16(LinkLocal([6]byte{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}))
	if want := netip.MustParseAddr("fe80::5054:ff:fe12:3456"); got != want {
		t.Fatalf("LinkLocal = %s, want %s", got, want)
	}
}

// TestFrame: the checksum over the pseudo-header and message comes out as
// 0 when computed again with the checksum in place (RFC 1071), and the
// options come in the order given, with the lengths they claim.
func TestFrame(t *testing.T) {
	mac := [6]byte{0x52, 0x54, 0, 1, 2, 3}
	for name, ra := range map[string]RA{
		"no router": {MAC: mac, LLA: LinkLocal(mac)},
		"prefix and MTU": {MAC: mac, LLA: LinkLocal(mac), Flags: 0x40, Lifetime: 1800, MTU: 1450,
			Prefix: &Prefix{Prefix: netip.MustParseAddr("2001:db8::").As16(), Len: 64, Flags: 0xc0, Valid: 86400, Preferred: 14400}},
	} {
		t.Run(name, func(t *testing.T) {
			f := ra.Frame()
			msg := f[14+40:]
			if plen := int(f[18])<<8 | int(f[19]); plen != len(msg) || f[20] != 58 || f[21] != 255 {
				t.Fatalf("IPv6 header %x for a %d-byte message", f[14:14+40], len(msg))
			}
			if sum := Checksum([16]byte(f[22:38]), [16]byte(f[38:54]), msg); sum != 0 {
				t.Fatalf("checksum does not verify: %#04x", sum)
			}
			if msg[0] != TypeRouterAdvertisement || int(msg[6])<<8|int(msg[7]) != int(ra.Lifetime) {
				t.Fatalf("message %x", msg)
			}
			var kinds []byte
			for o := msg[16:]; len(o) > 0; o = o[int(o[1])*8:] {
				if o[1] == 0 || int(o[1])*8 > len(o) {
					t.Fatalf("bad option length in %x", msg)
				}
				kinds = append(kinds, o[0])
			}
			want := []byte{1}
			if ra.Prefix != nil {
				want = []byte{3, 1, 5}
			}
			if string(kinds) != string(want) {
				t.Fatalf("options %v, want %v", kinds, want)
			}
			if IsRouterSolicitation(f) {
				t.Fatal("an advertisement taken for a solicitation")
			}
		})
	}
}
