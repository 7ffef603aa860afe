package nbd

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRandomRead runs fio's nbd engine, in its own process, reading
// 4 KiB pages at random offsets of an exported volume at queue depths 1
// and 32 (rackbench block's randread jobs), over its unix socket and
// loopback TCP, and reports this process's
// CPU microseconds per read (user and system): the server's cost of a
// read alone, which the IOPS of a loaded machine do not show.
func BenchmarkRandomRead(b *testing.B) {
	const size = 64 << 20
	_, v, srv, unixURI := serve(b, size)
	// The same export on loopback TCP, as rackd serves it beside the
	// unix socket.
	l, err := ListenTCP("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	defer func() {
		cancel()
		<-done
	}()
	tcpURI := "nbd://" + l.Addr().String() + "/vol"
	uri := unixURI
	command(b, "fio", "--name=fill", "--ioengine=nbd", "--uri="+uri, "--rw=write", "--bs=1M", "--iodepth=8",
		"--size="+strconv.Itoa(size), "--end_fsync=1")
	// Reads come from extents, as a volume's settle once folded, and no
	// fold runs beside them.
	if err := v.Fold(context.Background()); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name, uri string
		qd        int
	}{{"unix/qd1", unixURI, 1}, {"unix/qd32", unixURI, 32}, {"tcp/qd1", tcpURI, 1}, {"tcp/qd32", tcpURI, 32}} {
		uri, qd := c.uri, c.qd
		b.Run(c.name, func(b *testing.B) {
			var ru0, ru1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			start := time.Now()
			command(b, "fio", "--name=randread", "--ioengine=nbd", "--uri="+uri, "--rw=randread", "--bs=4k",
				"--iodepth="+strconv.Itoa(qd), "--size="+strconv.Itoa(size), "--io_size="+strconv.Itoa(b.N*4096),
				"--randrepeat=0", "--norandommap")
			el := time.Since(start)
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			cpu := time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano() + ru1.Stime.Nano() - ru0.Stime.Nano())
			b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(b.N), "cpu-µs/read")
			b.ReportMetric(float64(b.N)/el.Seconds(), "reads/s")
		})
	}
}
