package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	tests := map[string]struct {
		mode    string
		args    []string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, o *options)
	}{
		"dev defaults": {mode: "dev", check: func(t *testing.T, o *options) {
			if !o.Bootstrap || o.DataDir != ".rackstack" || o.Listen != "127.0.0.1:8770" || o.RaftListen != "127.0.0.1:8771" {
				t.Fatalf("%+v", o)
			}
			if o.apiURL() != "http://127.0.0.1:8770" || o.raftAdvertise() != "127.0.0.1:8771" {
				t.Fatalf("urls %s %s", o.apiURL(), o.raftAdvertise())
			}
		}},
		"env mirrors flags": {mode: "serve", env: map[string]string{"RACKD_DATA_DIR": "/d", "RACKD_BOOTSTRAP": "true", "RACKD_LISTEN": "0.0.0.0:9000"},
			check: func(t *testing.T, o *options) {
				if o.DataDir != "/d" || !o.Bootstrap || o.RaftListen != "0.0.0.0:9001" || o.Advertise != "127.0.0.1" {
					t.Fatalf("%+v", o)
				}
			}},
		"flag beats env": {mode: "serve", args: []string{"--data-dir", "/f"}, env: map[string]string{"RACKD_DATA_DIR": "/e"},
			check: func(t *testing.T, o *options) {
				if o.DataDir != "/f" {
					t.Fatalf("data dir %s", o.DataDir)
				}
			}},
		"advertise host": {mode: "serve", args: []string{"--data-dir", "d", "--listen", "0.0.0.0:8770", "--advertise", "10.1.2.3"},
			check: func(t *testing.T, o *options) {
				if o.apiURL() != "http://10.1.2.3:8770" || o.raftAdvertise() != "10.1.2.3:8771" {
					t.Fatalf("%s %s", o.apiURL(), o.raftAdvertise())
				}
			}},
		"no data dir":        {mode: "serve", wantErr: "--data-dir is required"},
		"join without token": {mode: "serve", args: []string{"--data-dir", "d", "--join", "http://x"}, wantErr: "--join needs --join-token"},
		"bootstrap and join": {mode: "serve", args: []string{"--data-dir", "d", "--bootstrap", "--join", "http://x", "--join-token", "t"}, wantErr: "exclude"},
		"bad listen":         {mode: "serve", args: []string{"--data-dir", "d", "--listen", "nope"}, wantErr: "--listen"},
		"bad voters":         {mode: "serve", args: []string{"--data-dir", "d", "--max-voters", "4"}, wantErr: "--max-voters"},
		"stray argument":     {mode: "serve", args: []string{"--data-dir", "d", "extra"}, wantErr: "unexpected argument"},
		"unknown flag":       {mode: "serve", args: []string{"--frobnicate"}, wantErr: "frobnicate"},
		"cpu allocation ratio": {mode: "serve", args: []string{"--data-dir", "d", "--cpu-allocation-ratio", "32"}, check: func(t *testing.T, o *options) {
			if o.CPUAllocationRatio != 32 {
				t.Fatalf("ratio %v", o.CPUAllocationRatio)
			}
		}},
		"default cpu allocation ratio": {mode: "serve", args: []string{"--data-dir", "d"}, check: func(t *testing.T, o *options) {
			if o.CPUAllocationRatio != 4 {
				t.Fatalf("ratio %v", o.CPUAllocationRatio)
			}
		}},
		"bad cpu allocation ratio": {mode: "serve", args: []string{"--data-dir", "d", "--cpu-allocation-ratio", "0"}, wantErr: "--cpu-allocation-ratio"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o, err := parseFlags(tc.mode, tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

func TestRecoverNeedsConfirmation(t *testing.T) {
	var out strings.Builder
	o := &options{Name: "n1", DataDir: t.TempDir(), RaftListen: "127.0.0.1:1", Advertise: "127.0.0.1"}
	err := recoverCluster(o, strings.NewReader("wrong\n"), &out)
	if err == nil || !strings.Contains(err.Error(), "not confirmed") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(out.String(), "ONLY voter") {
		t.Fatalf("no loud warning: %s", out.String())
	}
	// Confirmed, but there is nothing to recover in an empty data dir.
	err = recoverCluster(o, strings.NewReader("n1\n"), &out)
	if err == nil || !strings.Contains(err.Error(), "no cluster state") {
		t.Fatalf("err = %v", err)
	}
}

func TestVLANRangeFlag(t *testing.T) {
	tests := map[string]struct {
		args    []string
		env     map[string]string
		lo, hi  int
		wantErr bool
	}{
		"default":        {lo: 100, hi: 3999},
		"flag":           {args: []string{"--vlan-range", "200-299"}, lo: 200, hi: 299},
		"env":            {env: map[string]string{"RACKD_VLAN_RANGE": "10-20"}, lo: 10, hi: 20},
		"spaces":         {args: []string{"--vlan-range", " 5 - 6 "}, lo: 5, hi: 6},
		"one vlan":       {args: []string{"--vlan-range", "7-7"}, lo: 7, hi: 7},
		"whole range":    {args: []string{"--vlan-range", "1-4094"}, lo: 1, hi: 4094},
		"reversed":       {args: []string{"--vlan-range", "300-200"}, wantErr: true},
		"zero":           {args: []string{"--vlan-range", "0-10"}, wantErr: true},
		"4095":           {args: []string{"--vlan-range", "100-4095"}, wantErr: true},
		"no dash":        {args: []string{"--vlan-range", "100"}, wantErr: true},
		"not a number":   {args: []string{"--vlan-range", "a-b"}, wantErr: true},
		"empty":          {args: []string{"--vlan-range", ""}, wantErr: true},
		"negative start": {args: []string{"--vlan-range", "-5-10"}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"--data-dir", "d"}, tc.args...)
			o, err := parseFlags("serve", args, func(k string) string { return tc.env[k] }, io.Discard)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "--vlan-range") {
					t.Fatalf("err = %v, want a --vlan-range error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.VLANMin != tc.lo || o.VLANMax != tc.hi {
				t.Fatalf("range %d-%d, want %d-%d", o.VLANMin, o.VLANMax, tc.lo, tc.hi)
			}
		})
	}
}

func TestCommandLine(t *testing.T) {
	tests := map[string]struct {
		args     []string
		code     int
		out, err string // substrings of stdout and stderr
		notOut   string
	}{
		"version flag":       {args: []string{"--version"}, code: 0, out: "rackd "},
		"version mode":       {args: []string{"version"}, code: 0, out: "rackd "},
		"help lists modes":   {args: []string{"--help"}, code: 0, out: "rackd recover"},
		"help lists flags":   {args: []string{"--help"}, code: 0, out: "-join-token"},
		"typo suggests":      {args: []string{"deb"}, code: 2, err: `did you mean "dev"?`},
		"unknown mode fails": {args: []string{"frobnicate"}, code: 2, err: `unknown mode "frobnicate"`},
		"recover help":       {args: []string{"recover", "--help"}, code: 0, err: "-yes-i-know"},
		"dev has no join":    {args: []string{"dev", "--join", "http://x"}, code: 2, err: "flag provided but not defined: -join"},
		"dev ec beyond disks": {args: []string{"dev", "--data-dir", "d", "--ec", "9+9"}, code: 2,
			err: "--ec 9+9 needs 18 disks on this one node, and it has 6"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := run(tc.args, strings.NewReader(""), &out, &errOut, func(string) string { return "" })
			if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.err) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errOut.String())
			}
		})
	}
	// Each mode's help shows only its flags.
	var errOut strings.Builder
	run([]string{"recover", "--help"}, strings.NewReader(""), io.Discard, &errOut, func(string) string { return "" })
	for _, other := range []string{"-disk", "-join", "-vlan-range", "-compute"} {
		if strings.Contains(errOut.String(), other+" ") {
			t.Fatalf("recover's help shows %s:\n%s", other, errOut.String())
		}
	}
}

func TestProvisionFlags(t *testing.T) {
	ramdisk := t.TempDir()
	for _, f := range []string{"vmlinuz", "initramfs.zst"} {
		if err := os.WriteFile(filepath.Join(ramdisk, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	empty := t.TempDir()
	base := []string{"--data-dir", "d"}
	for name, tc := range map[string]struct {
		args    []string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, o *options)
	}{
		"off by default": {check: func(t *testing.T, o *options) {
			if o.ProvisionInterface != "" || o.ProvisionDHCP != "proxy" || o.ProvisionHTTPPort != 8069 {
				t.Fatalf("%+v", o)
			}
		}},
		"proxy": {args: []string{"--provision-interface", "prov0", "--provision-ramdisk", ramdisk}, check: func(t *testing.T, o *options) {
			if o.ProvisionInterface != "prov0" || o.ProvisionDHCP != "proxy" || !o.ProvisionLeases.IsZero() ||
				o.ProvisionCallbackTimeout != 10*time.Minute || o.ProvisionHeartbeatTimeout != 90*time.Second || o.InspectAddPorts != "pxe" {
				t.Fatalf("%+v", o)
			}
		}},
		"full with a range": {args: []string{"--provision-interface", "prov0", "--provision-ramdisk", ramdisk, "--provision-dhcp", "full",
			"--provision-range", "192.168.50.100-192.168.50.200", "--provision-http-port", "9000", "--provision-heartbeat-timeout", "5s"},
			check: func(t *testing.T, o *options) {
				if o.ProvisionLeases.Start.String() != "192.168.50.100" || o.ProvisionLeases.End.String() != "192.168.50.200" ||
					o.ProvisionHTTPPort != 9000 || o.ProvisionHeartbeatTimeout != 5*time.Second {
					t.Fatalf("%+v", o)
				}
			}},
		"env mirrors flags": {env: map[string]string{"RACKD_PROVISION_INTERFACE": "prov1", "RACKD_PROVISION_RAMDISK": ramdisk},
			check: func(t *testing.T, o *options) {
				if o.ProvisionInterface != "prov1" {
					t.Fatalf("%+v", o)
				}
			}},
		"full without a range": {args: []string{"--provision-interface", "prov0", "--provision-ramdisk", ramdisk, "--provision-dhcp", "full"},
			wantErr: "--provision-dhcp full needs --provision-range"},
		"range with proxy": {args: []string{"--provision-interface", "prov0", "--provision-ramdisk", ramdisk, "--provision-range", "10.0.0.1-10.0.0.9"},
			wantErr: "--provision-range is only for --provision-dhcp full"},
		"bad range": {args: []string{"--provision-interface", "prov0", "--provision-ramdisk", ramdisk, "--provision-dhcp", "full", "--provision-range", "10.0.0.9-10.0.0.1"},
			wantErr: "--provision-range"},
		"bad mode":            {args: []string{"--provision-dhcp", "relay"}, wantErr: "--provision-dhcp \"relay\""},
		"range without iface": {args: []string{"--provision-range", "10.0.0.1-10.0.0.9"}, wantErr: "--provision-range needs --provision-interface"},
		"no ramdisk dir":      {args: []string{"--provision-interface", "prov0"}, wantErr: "run make ramdisk"},
		"ramdisk not built":   {args: []string{"--provision-interface", "prov0", "--provision-ramdisk", empty}, wantErr: "run make ramdisk"},
		"bad port":            {args: []string{"--provision-interface", "prov0", "--provision-ramdisk", ramdisk, "--provision-http-port", "70000"}, wantErr: "--provision-http-port"},
		"inspect add ports": {args: []string{"--provision-interface", "prov0", "--provision-ramdisk", ramdisk, "--inspect-add-ports", "all"},
			check: func(t *testing.T, o *options) {
				if o.InspectAddPorts != "all" {
					t.Fatalf("%+v", o)
				}
			}},
		"bad inspect add ports":  {args: []string{"--provision-interface", "prov0", "--provision-ramdisk", ramdisk, "--inspect-add-ports", "some"}, wantErr: "--inspect-add-ports \"some\""},
		"zero heartbeat timeout": {args: []string{"--provision-interface", "prov0", "--provision-ramdisk", ramdisk, "--provision-heartbeat-timeout", "0s"}, wantErr: "must be positive"},
	} {
		t.Run(name, func(t *testing.T) {
			o, err := parseFlags("serve", append(slices.Clone(base), tc.args...), func(k string) string { return tc.env[k] }, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}
