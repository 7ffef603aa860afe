// Command rack-bmcsim simulates the BMCs of bare-metal servers for tests
// and benchmarks. Each server is a machine directory (provision/bmc/bmcsim)
// holding the QEMU command line it runs when powered on.
//
//	rack-bmcsim machine DIR -- QEMU-ARGV…
//	    make a machine directory whose power on runs QEMU-ARGV
//	rack-bmcsim redfish --listen 127.0.0.1:PORT --user U --password P --system-id ID --machine DIR
//	    serve Redfish over HTTPS (self-signed) for the machine until signalled
//	rack-bmcsim ipmi --port PORT --user U --password P --machine DIR
//	    run ipmi_sim on 127.0.0.1:PORT for the machine until signalled
//	rack-bmcsim chassis DIR [0x20] get power|boot  /  set power 1|0 | boot pxe|default | reset 1 | shutdown 1
//	    ipmi_sim's chassis-control program (what `ipmi` configures)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rackstack/rackstack/provision/bmc/bmcsim"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  rack-bmcsim machine DIR -- QEMU-ARGV...
  rack-bmcsim redfish --listen 127.0.0.1:PORT --user U --password P --system-id ID --machine DIR
  rack-bmcsim ipmi --port PORT --user U --password P --machine DIR [--ipmi-sim PATH]
  rack-bmcsim chassis DIR [0x20] get NAME... | set NAME VALUE...
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	var err error
	switch args[0] {
	case "machine":
		err = machine(args[1:])
	case "chassis":
		err = chassis(args[1:], stdout)
	case "redfish":
		err = redfish(ctx, args[1:], log)
	case "ipmi":
		err = ipmi(ctx, args[1:], log)
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "rack-bmcsim %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func machine(args []string) error {
	if len(args) < 3 || args[1] != "--" {
		return errors.New("want DIR -- QEMU-ARGV...")
	}
	_, err := bmcsim.Create(args[0], args[2:])
	return err
}

func chassis(args []string, stdout io.Writer) error {
	if len(args) < 1 {
		return errors.New("want DIR get|set ...")
	}
	rest := args[1:]
	// ipmi_sim passes the MC address it was configured with first.
	if len(rest) > 0 && strings.HasPrefix(rest[0], "0x") {
		rest = rest[1:]
	}
	return bmcsim.Chassis(&bmcsim.Machine{Dir: args[0]}, rest, stdout)
}

func redfish(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("redfish", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8443", "address to serve HTTPS on")
	user := fs.String("user", "admin", "user name")
	password := fs.String("password", "", "password (required)")
	system := fs.String("system-id", "1", "the system's Id (its path is /redfish/v1/Systems/ID)")
	dir := fs.String("machine", "", "machine directory (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *password == "" {
		return errors.New("--machine and --password are required")
	}
	if strings.ContainsAny(*system, "/ ") {
		return fmt.Errorf("--system-id %q: an Id, not a path", *system)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	log.Info("serving redfish", "address", "https://"+ln.Addr().String(), "system", "/redfish/v1/Systems/"+*system, "machine", *dir)
	return bmcsim.ServeRedfish(ctx, ln, &bmcsim.Redfish{
		Machine: &bmcsim.Machine{Dir: *dir}, SystemID: *system, User: *user, Password: *password, Log: log,
	})
}

func ipmi(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("ipmi", flag.ContinueOnError)
	port := fs.Int("port", 6230, "UDP port on 127.0.0.1")
	user := fs.String("user", "admin", "user name")
	password := fs.String("password", "", "password (required)")
	dir := fs.String("machine", "", "machine directory (required)")
	bin := fs.String("ipmi-sim", "", "ipmi_sim binary (default: from PATH)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *password == "" {
		return errors.New("--machine and --password are required")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	p, err := bmcsim.IPMISim{
		Dir: *dir, Port: *port, User: *user, Password: *password, Binary: *bin,
		Chassis: []string{self, "chassis", *dir},
	}.Start(ctx)
	if err != nil {
		return err
	}
	log.Info("ipmi_sim running", "address", fmt.Sprintf("127.0.0.1:%d", *port), "pid", p.PID(), "machine", *dir)
	<-ctx.Done()
	return p.Stop()
}
