package tftp

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pin/tftp/v3"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// serve runs a server for dir on a free loopback port until the test ends.
func serve(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Addr = netip.MustParseAddrPort("127.0.0.1:0")
	cfg.Log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("serve did not return after its context ended")
		}
	})
	return s
}

func client(t *testing.T, s *Server) *tftp.Client {
	t.Helper()
	c, err := tftp.NewClient(s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(2 * time.Second)
	c.SetRetries(3)
	return c
}

func get(c *tftp.Client, name string) ([]byte, error) {
	wt, err := c.Receive(name, "octet")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_, err = wt.WriteTo(&buf)
	return buf.Bytes(), err
}

// testDir holds a file of an odd size (not a multiple of any block size)
// and a directory with a file inside.
func testDir(t *testing.T) (dir string, data []byte) {
	t.Helper()
	dir = t.TempDir()
	data = make([]byte, 200_000+37)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(dir, "undionly.kpxe"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "inner"), []byte("inner"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, data
}

func TestTransferIsByteIdentical(t *testing.T) {
	dir, data := testDir(t)
	s := serve(t, Config{Dir: dir})
	for _, blksize := range []int{0, 1432} { // 0: RFC 1350's 512; 1432: what iPXE asks for
		t.Run("blksize "+strconv.Itoa(blksize), func(t *testing.T) {
			c := client(t, s)
			if blksize > 0 {
				c.SetBlockSize(blksize)
			}
			got, err := get(c, "undionly.kpxe")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("received %d bytes differing from the %d served", len(got), len(data))
			}
		})
	}
}

// TestServesIPXEBinaries fetches what firmware fetches, from Debian's ipxe
// package, where ipxe.efi is a symbolic link out of the directory.
func TestServesIPXEBinaries(t *testing.T) {
	const dir = "/usr/lib/ipxe"
	testenv.RequireFile(t, filepath.Join(dir, "undionly.kpxe"), "make deps installs the ipxe package")
	s := serve(t, Config{Dir: dir})
	for _, name := range []string{"undionly.kpxe", "ipxe.efi", "snponly.efi"} {
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			c := client(t, s)
			c.SetBlockSize(1432)
			got, err := get(c, name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("received %d bytes differing from the %d of %s", len(got), len(want), name)
			}
		})
	}
}

// TestOtherClients fetches with the TFTP clients of other implementations
// (busybox's and curl's); without them it skips, and fails where
// RACKSTACK_REQUIRE_INTEGRATION is set.
func TestOtherClients(t *testing.T) {
	dir, data := testDir(t)
	s := serve(t, Config{Dir: dir})
	host, port := s.Addr().Addr().String(), strconv.Itoa(int(s.Addr().Port()))
	for name, args := range map[string][]string{
		"busybox": {"busybox", "tftp", "-g", "-r", "undionly.kpxe", "-l", "OUT", host, port},
		"curl":    {"curl", "-sS", "--max-time", "30", "-o", "OUT", "tftp://" + host + ":" + port + "/undionly.kpxe"},
	} {
		t.Run(name, func(t *testing.T) {
			args[0] = testenv.RequireCommand(t, args[0]) // make deps installs both
			out := filepath.Join(t.TempDir(), "out")
			for i, a := range args {
				if a == "OUT" {
					args[i] = out
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if b, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, b)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("%s received %d bytes differing from the %d served", name, len(got), len(data))
			}
		})
	}
}

func TestRefusesWrites(t *testing.T) {
	dir, _ := testDir(t)
	s := serve(t, Config{Dir: dir})
	c := client(t, s)
	rf, err := c.Send("new.efi", "octet")
	if err == nil {
		_, err = rf.ReadFrom(bytes.NewReader(make([]byte, 4096)))
	}
	if err == nil {
		t.Fatal("write accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, "new.efi")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("written file exists: %v", err)
	}
	// Nor may a write replace a served file.
	before, _ := os.ReadFile(filepath.Join(dir, "undionly.kpxe"))
	if rf, err := c.Send("undionly.kpxe", "octet"); err == nil {
		rf.ReadFrom(bytes.NewReader([]byte("evil")))
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "undionly.kpxe")); !bytes.Equal(before, after) {
		t.Error("a write changed a served file")
	}
}

func TestRefusesNamesOutsideTheDirectory(t *testing.T) {
	dir, _ := testDir(t)
	// A file beside the served directory, as ../secret would reach it.
	if err := os.WriteFile(filepath.Join(filepath.Dir(dir), "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := serve(t, Config{Dir: dir})
	for name, want := range map[string]string{
		"../etc/passwd":           "bare name",
		"../secret":               "bare name",
		"/etc/passwd":             "bare name",
		"sub/inner":               "bare name",
		`..\secret`:               "bare name",
		"..":                      "bare name",
		"sub":                     "not found",
		"missing.efi":             "not found",
		"undionly.kpxe/../secret": "bare name",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := get(client(t, s), name)
			if err == nil {
				t.Fatalf("served %d bytes", len(got))
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q, want one saying %q", err, want)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	dir, _ := testDir(t)
	file := filepath.Join(dir, "undionly.kpxe")
	for name, cfg := range map[string]Config{
		"no address":       {Dir: dir},
		"every address":    {Addr: netip.MustParseAddrPort("0.0.0.0:0"), Dir: dir},
		"missing dir":      {Addr: netip.MustParseAddrPort("127.0.0.1:0"), Dir: filepath.Join(dir, "nosuch")},
		"file for dir":     {Addr: netip.MustParseAddrPort("127.0.0.1:0"), Dir: file},
		"address not ours": {Addr: netip.MustParseAddrPort("192.0.2.1:0"), Dir: dir},
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := New(cfg); err == nil {
				s.Close()
				t.Fatal("accepted")
			}
		})
	}
}

// TestStalledClientIsBounded: a client that asks and never acknowledges
// is given up on, and stopping the server does not wait for it forever.
func TestStalledClientIsBounded(t *testing.T) {
	dir, _ := testDir(t)
	s, err := New(Config{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Dir: dir,
		Timeout: 100 * time.Millisecond, Retries: 2, Log: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()

	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rrq := append([]byte{0, 1}, []byte("undionly.kpxe\x00octet\x00")...)
	if _, err := conn.WriteToUDP(rrq, net.UDPAddrFromAddrPort(s.Addr())); err != nil {
		t.Fatal(err)
	}
	// The first data block arrives; it is never acknowledged. The server
	// resends it and then gives up with an error packet.
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 1024)
	var data, gaveUp bool
	for !gaveUp {
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("after data %v: %v", data, err)
		}
		switch {
		case n >= 4 && buf[1] == 3:
			data = true
		case n >= 4 && buf[1] == 5:
			gaveUp = true
		}
	}
	if !data {
		t.Error("no data block before the server gave up")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not return")
	}
}
