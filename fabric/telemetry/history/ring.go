package history

// Point is one sample: unix seconds and the value. It marshals as the
// two-element array [t, v] the history API answers with.
type Point [2]float64

// ring keeps the last len(buf) points of one series, oldest overwritten
// first.
type ring struct {
	buf   []Point
	next  int // where the next point goes
	count int // how many of buf hold points
}

func newRing(n int) *ring { return &ring{buf: make([]Point, n)} }

func (r *ring) add(p Point) {
	r.buf[r.next] = p
	r.next = (r.next + 1) % len(r.buf)
	if r.count < len(r.buf) {
		r.count++
	}
}

// points returns a copy, oldest first.
func (r *ring) points() []Point {
	out := make([]Point, 0, r.count)
	start := (r.next - r.count + len(r.buf)) % len(r.buf)
	for i := 0; i < r.count; i++ {
		out = append(out, r.buf[(start+i)%len(r.buf)])
	}
	return out
}

// last is the newest point; ok is false for an empty ring.
func (r *ring) last() (Point, bool) {
	if r.count == 0 {
		return Point{}, false
	}
	return r.buf[(r.next-1+len(r.buf))%len(r.buf)], true
}
