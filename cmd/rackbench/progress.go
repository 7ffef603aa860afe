package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// progress shows "case n of m, elapsed, ETA" on one line of a terminal
// while a long suite runs. It is silent when the log is not a terminal
// or the output is JSON, so that piped and scripted runs print only
// their results.
type progress struct {
	w     io.Writer // nil: silent
	total int
	n     int
	begin time.Time
	now   func() time.Time
}

func newProgress(o options, total int) *progress {
	p := &progress{total: total, begin: time.Now(), now: time.Now}
	if o.Output != "json" && isTerminal(o.Log) {
		p.w = o.Log
	}
	return p
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// start announces the next case.
func (p *progress) start(what string) {
	p.n++
	if p.w == nil {
		return
	}
	fmt.Fprintf(p.w, "\r\033[K%s", p.line(what))
}

// line is the progress text before case n (1-based) starts: the ETA
// assumes the cases left take as long as the ones done took on average.
func (p *progress) line(what string) string {
	elapsed := p.now().Sub(p.begin).Round(time.Second)
	eta := "?"
	if done := p.n - 1; done > 0 {
		eta = (elapsed / time.Duration(done) * time.Duration(p.total-done)).Round(time.Second).String()
	}
	return fmt.Sprintf("case %d of %d (%s), elapsed %s, ETA %s", p.n, p.total, what, elapsed, eta)
}

// done ends the progress line.
func (p *progress) done() {
	if p.w != nil && p.n > 0 {
		fmt.Fprintf(p.w, "\r\033[K")
	}
}
