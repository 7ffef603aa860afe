//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// The openstack CLI the tests run is the real python-openstackclient; its
// commands run in processes forked from one interpreter that imported it
// once (oscfork.py), not each in a fresh interpreter that spends ~1.3
// CPU-seconds on imports first. oscSocket is that server's socket, set by
// TestMain; empty, each command runs /usr/bin/openstack.
var oscSocket string

// oscTrailer ends a forked command's output, before its exit status.
const oscTrailer = "\n\x00oscfork-exit "

// startOSCFork starts oscfork.py with the interpreter /usr/bin/openstack
// names and waits until it serves; the returned func stops it. Where it
// cannot start, the tests run /usr/bin/openstack itself.
func startOSCFork() func() {
	python, err := scriptInterpreter("/usr/bin/openstack")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration: openstack CLI runs unforked:", err)
		return func() {}
	}
	dir, err := os.MkdirTemp("", "rackstack-oscfork")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration: openstack CLI runs unforked:", err)
		return func() {}
	}
	script, _ := filepath.Abs("oscfork.py")
	sock := filepath.Join(dir, "osc.sock")
	cmd := exec.Command(python, script, sock)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, _ := cmd.StdoutPipe()
	stop := func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
		os.RemoveAll(dir)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "integration: openstack CLI runs unforked:", err)
		stop()
		return func() {}
	}
	if procs != nil {
		_ = procs.Process(cmd.Process.Pid, true)
	}
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line == "ready\n"
		io.Copy(io.Discard, out)
	}()
	select {
	case ok := <-ready:
		if !ok {
			fmt.Fprintln(os.Stderr, "integration: openstack CLI runs unforked: oscfork.py did not start")
			stop()
			return func() {}
		}
	case <-time.After(time.Minute):
		fmt.Fprintln(os.Stderr, "integration: openstack CLI runs unforked: oscfork.py not ready within a minute")
		stop()
		return func() {}
	}
	oscSocket = sock
	return stop
}

// scriptInterpreter reads the interpreter from a script's #! line.
func scriptInterpreter(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if !strings.HasPrefix(line, "#!") || len(fields) != 1 {
		return "", fmt.Errorf("%s: no single interpreter in %q", path, strings.TrimSpace(line))
	}
	return fields[0], nil
}

// runOpenstack runs one openstack command with env as its whole
// environment and returns its stdout and stderr together; a non-zero exit
// is an error "exit status N", as from exec.
func runOpenstack(ctx context.Context, env []string, args ...string) (string, error) {
	if oscSocket == "" {
		return runCombined(ctx, env, "/usr/bin/openstack", args...)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", oscSocket)
	if err != nil {
		return "", fmt.Errorf("oscfork: %w", err)
	}
	defer conn.Close()
	if env == nil {
		env = os.Environ()
	}
	dir, _ := os.Getwd()
	req, _ := json.Marshal(map[string]any{"argv": args, "env": env, "dir": dir})
	if _, err := conn.Write(append(req, '\n')); err != nil {
		return "", fmt.Errorf("oscfork: %w", err)
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "pid "))
	if err != nil || perr != nil || pid <= 0 {
		return "", fmt.Errorf("oscfork: no command started (%q, %v)", line, err)
	}
	// The command is killed, by its PID, at the context's end.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(pid, syscall.SIGKILL)
			conn.Close()
		case <-done:
		}
	}()
	raw, err := io.ReadAll(r)
	i := bytes.LastIndex(raw, []byte(oscTrailer))
	if i < 0 {
		if ctx.Err() != nil {
			return string(raw), fmt.Errorf("openstack killed: %w", ctx.Err())
		}
		return string(raw), fmt.Errorf("openstack ended without an exit status (%v)", err)
	}
	out := string(raw[:i])
	code, err := strconv.Atoi(strings.TrimSpace(string(raw[i+len(oscTrailer):])))
	if err != nil {
		return out, fmt.Errorf("openstack: unreadable exit status %q", raw[i+len(oscTrailer):])
	}
	if code != 0 {
		return out, fmt.Errorf("exit status %d", code)
	}
	return out, nil
}

// runCombined runs a command with env as its whole environment and
// returns its stdout and stderr together.
func runCombined(ctx context.Context, env []string, path string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestForkedCLIAnswersAsTheCLI runs the same commands through the forked
// CLI and through /usr/bin/openstack: the same output and exit status,
// success or not.
func TestForkedCLIAnswersAsTheCLI(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/openstack")
	if oscSocket == "" {
		t.Fatal("the forked CLI did not start (see the lines above the first test)")
	}
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "OS_AUTH_URL=http://" + freeAddr(t) + "/identity/v3",
		"OS_USERNAME=nobody", "OS_PASSWORD=x", "OS_PROJECT_NAME=none", "OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default"}
	for _, args := range [][]string{
		{"--version"},
		{"flavor", "list"},                     // nothing listens: exits 1
		{"--no-such-option", "flavor", "list"}, // argparse: exits 2
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		forked, ferr := runOpenstack(ctx, env, args...)
		cancel()
		plain, perr := runCombined(context.Background(), env, "/usr/bin/openstack", args...)
		// Object addresses in Python's reprs differ from run to run.
		addr := regexp.MustCompile(`0x[0-9a-f]+`)
		if fmt.Sprint(ferr) != fmt.Sprint(perr) || addr.ReplaceAllString(forked, "0x") != addr.ReplaceAllString(plain, "0x") {
			t.Errorf("openstack %s:\nforked (%v):\n%s\nplain (%v):\n%s", strings.Join(args, " "), ferr, forked, perr, plain)
		}
	}
}
