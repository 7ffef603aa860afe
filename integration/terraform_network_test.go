//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// The Terraform OpenStack provider the test drives, built from the Go
// module proxy by `make terraform-provider` (keep the version in step with
// the Makefile's TF_PROVIDER_VERSION).
const (
	tfProviderModule  = "github.com/terraform-provider-openstack/terraform-provider-openstack/v3"
	tfProviderVersion = "v3.4.0"
)

// tfNetworkStack is a typical project network as Terraform users write
// it: a network and subnet behind a router with a gateway on "public", a
// security group with two rules, a port in it and a floating IP on the
// port.
const tfNetworkStack = `
terraform {
  required_providers {
    openstack = { source = "terraform-provider-openstack/openstack" }
  }
}

data "openstack_networking_network_v2" "public" {
  name = "public"
}

resource "openstack_networking_network_v2" "net" {
  name = "tf-net"
}

resource "openstack_networking_subnet_v2" "sub" {
  name            = "tf-sub"
  network_id      = openstack_networking_network_v2.net.id
  cidr            = "10.80.0.0/24"
  dns_nameservers = ["10.80.0.53"]
}

resource "openstack_networking_router_v2" "r" {
  name                = "tf-router"
  external_network_id = data.openstack_networking_network_v2.public.id
}

resource "openstack_networking_router_interface_v2" "ri" {
  router_id = openstack_networking_router_v2.r.id
  subnet_id = openstack_networking_subnet_v2.sub.id
}

# A second subnet joins the router by a port of its own holding the
# subnet's gateway address, as Terraform users often do.
resource "openstack_networking_network_v2" "net2" {
  name = "tf-net2"
}

resource "openstack_networking_subnet_v2" "sub2" {
  name       = "tf-sub2"
  network_id = openstack_networking_network_v2.net2.id
  cidr       = "10.81.0.0/24"
}

resource "openstack_networking_port_v2" "gw2" {
  name       = "tf-gw2"
  network_id = openstack_networking_network_v2.net2.id
  fixed_ip {
    subnet_id  = openstack_networking_subnet_v2.sub2.id
    ip_address = openstack_networking_subnet_v2.sub2.gateway_ip
  }
}

resource "openstack_networking_router_interface_v2" "ri2" {
  router_id = openstack_networking_router_v2.r.id
  port_id   = openstack_networking_port_v2.gw2.id
}

resource "openstack_networking_secgroup_v2" "sg" {
  name        = "tf-sg"
  description = "ssh and ping"
}

resource "openstack_networking_secgroup_rule_v2" "ssh" {
  security_group_id = openstack_networking_secgroup_v2.sg.id
  direction         = "ingress"
  ethertype         = "IPv4"
  protocol          = "tcp"
  port_range_min    = 22
  port_range_max    = 22
  remote_ip_prefix  = "0.0.0.0/0"
}

resource "openstack_networking_secgroup_rule_v2" "icmp" {
  security_group_id = openstack_networking_secgroup_v2.sg.id
  direction         = "ingress"
  ethertype         = "IPv4"
  protocol          = "icmp"
}

resource "openstack_networking_port_v2" "p" {
  name               = "tf-port"
  network_id         = openstack_networking_network_v2.net.id
  security_group_ids = [openstack_networking_secgroup_v2.sg.id]
  fixed_ip {
    subnet_id  = openstack_networking_subnet_v2.sub.id
    ip_address = "10.80.0.10"
  }
}

resource "openstack_networking_floatingip_v2" "fip" {
  pool       = "public"
  port_id    = openstack_networking_port_v2.p.id
  depends_on = [openstack_networking_router_interface_v2.ri]
}

output "ids" {
  value = {
    network = openstack_networking_network_v2.net.id
    network2 = openstack_networking_network_v2.net2.id
    gw2     = openstack_networking_port_v2.gw2.id
    subnet  = openstack_networking_subnet_v2.sub.id
    router  = openstack_networking_router_v2.r.id
    public  = data.openstack_networking_network_v2.public.id
    sg      = openstack_networking_secgroup_v2.sg.id
    port    = openstack_networking_port_v2.p.id
    fip     = openstack_networking_floatingip_v2.fip.id
    fip_ip  = openstack_networking_floatingip_v2.fip.address
  }
}
`

// TestTerraformNetwork applies and destroys tfNetworkStack with the real
// terraform and OpenStack provider against a real rackd, checks every
// resource through the Neutron API, and checks that a plan right after the
// apply finds nothing to change (what the provider reads back is what it
// wrote).
func TestTerraformNetwork(t *testing.T) {
	n := newRackd(t, "tf", "--s3-listen", "off", "--public", "172.24.4.0/24")
	n.start("--bootstrap")
	n.waitHealthy()
	creds := openrc(t, n.dataDir)
	tok := token(t, n, creds["OS_USERNAME"], creds["OS_PASSWORD"], creds["OS_PROJECT_NAME"])
	neutron := n.url() + "/network/v2.0"
	if !eventually(30*time.Second, func() bool {
		var nets struct{ Networks []any }
		code, err := call("GET", neutron+"/networks?name=public", tok, nil, &nets)
		return err == nil && code == 200 && len(nets.Networks) == 1
	}) {
		t.Fatal("no network public")
	}

	terraform := terraformIn(t, t.TempDir(), tfNetworkStack, osEnv(creds, n))

	out, err := terraform("apply", "-auto-approve", "-input=false")
	// Whatever happened, take down what was made (a destroy of nothing is
	// harmless); the rackd goes with the test anyway.
	destroyed := false
	t.Cleanup(func() {
		if !destroyed {
			terraform("destroy", "-auto-approve", "-input=false")
		}
	})
	if err != nil {
		t.Fatalf("terraform apply: %v\n%s", err, out)
	}
	out, err = terraform("output", "-json", "ids")
	if err != nil {
		t.Fatalf("terraform output: %v\n%s", err, out)
	}
	var ids map[string]string
	if err := json.Unmarshal([]byte(out), &ids); err != nil {
		t.Fatalf("terraform output %q: %v", out, err)
	}

	get := func(path string, out any) {
		t.Helper()
		if code, err := call("GET", neutron+path, tok, nil, out); err != nil || code != 200 {
			t.Fatalf("GET %s: %d %v", path, code, err)
		}
	}
	var subnet struct {
		Subnet struct {
			NetworkID      string   `json:"network_id"`
			CIDR           string   `json:"cidr"`
			GatewayIP      string   `json:"gateway_ip"`
			DNSNameservers []string `json:"dns_nameservers"`
		}
	}
	get("/subnets/"+ids["subnet"], &subnet)
	if s := subnet.Subnet; s.NetworkID != ids["network"] || s.CIDR != "10.80.0.0/24" || s.GatewayIP != "10.80.0.1" || strings.Join(s.DNSNameservers, ",") != "10.80.0.53" {
		t.Errorf("subnet %+v", s)
	}
	var router struct {
		Router struct {
			Status string
			GW     *struct {
				NetworkID string `json:"network_id"`
				IPs       []struct {
					IP string `json:"ip_address"`
				} `json:"external_fixed_ips"`
			} `json:"external_gateway_info"`
		}
	}
	get("/routers/"+ids["router"], &router)
	if gw := router.Router.GW; gw == nil || gw.NetworkID != ids["public"] || len(gw.IPs) != 1 || !strings.HasPrefix(gw.IPs[0].IP, "172.24.4.") {
		t.Errorf("router gateway %+v", gw)
	}
	type port struct {
		ID             string   `json:"id"`
		DeviceID       string   `json:"device_id"`
		DeviceOwner    string   `json:"device_owner"`
		SecurityGroups []string `json:"security_groups"`
		FixedIPs       []struct {
			SubnetID string `json:"subnet_id"`
			IP       string `json:"ip_address"`
		} `json:"fixed_ips"`
	}
	var ifaces struct{ Ports []port }
	get("/ports?device_id="+ids["router"]+"&network_id="+ids["network"], &ifaces)
	if len(ifaces.Ports) != 1 || !strings.HasPrefix(ifaces.Ports[0].DeviceOwner, "network:router_interface") ||
		len(ifaces.Ports[0].FixedIPs) != 1 || ifaces.Ports[0].FixedIPs[0].IP != "10.80.0.1" {
		t.Errorf("router interface ports %+v", ifaces.Ports)
	}
	var gw2 struct{ Port port }
	get("/ports/"+ids["gw2"], &gw2)
	if p := gw2.Port; p.DeviceID != ids["router"] || !strings.HasPrefix(p.DeviceOwner, "network:router_interface") || len(p.FixedIPs) != 1 || p.FixedIPs[0].IP != "10.81.0.1" {
		t.Errorf("port holding the second subnet's gateway address, as the router's interface: %+v", p)
	}
	var rules struct {
		Rules []struct {
			Direction string  `json:"direction"`
			Protocol  *string `json:"protocol"`
			Min       *int    `json:"port_range_min"`
			Max       *int    `json:"port_range_max"`
			Remote    *string `json:"remote_ip_prefix"`
		} `json:"security_group_rules"`
	}
	get("/security-group-rules?security_group_id="+ids["sg"]+"&direction=ingress", &rules)
	found := map[string]bool{}
	for _, r := range rules.Rules {
		switch {
		case r.Protocol != nil && *r.Protocol == "tcp" && r.Min != nil && *r.Min == 22 && r.Max != nil && *r.Max == 22 && r.Remote != nil && *r.Remote == "0.0.0.0/0":
			found["ssh"] = true
		case r.Protocol != nil && *r.Protocol == "icmp":
			found["icmp"] = true
		}
	}
	if !found["ssh"] || !found["icmp"] || len(rules.Rules) != 2 {
		t.Errorf("ingress rules of the group: %+v", rules.Rules)
	}
	var p struct{ Port port }
	get("/ports/"+ids["port"], &p)
	if strings.Join(p.Port.SecurityGroups, ",") != ids["sg"] || len(p.Port.FixedIPs) != 1 || p.Port.FixedIPs[0].IP != "10.80.0.10" || p.Port.FixedIPs[0].SubnetID != ids["subnet"] {
		t.Errorf("port %+v", p.Port)
	}
	var fip struct {
		FloatingIP struct {
			Address  string `json:"floating_ip_address"`
			Network  string `json:"floating_network_id"`
			PortID   string `json:"port_id"`
			FixedIP  string `json:"fixed_ip_address"`
			RouterID string `json:"router_id"`
		} `json:"floatingip"`
	}
	get("/floatingips/"+ids["fip"], &fip)
	if f := fip.FloatingIP; f.Address != ids["fip_ip"] || f.Network != ids["public"] || f.PortID != ids["port"] || f.FixedIP != "10.80.0.10" || f.RouterID != ids["router"] {
		t.Errorf("floating IP %+v (router %s)", f, ids["router"])
	}

	// Read back, the cloud holds what was written: nothing to change.
	if out, err := terraform("plan", "-detailed-exitcode", "-input=false"); err != nil {
		t.Errorf("terraform plan after apply is not empty (%v):\n%s", err, out)
	}

	out, err = terraform("destroy", "-auto-approve", "-input=false")
	destroyed = true
	if err != nil {
		t.Fatalf("terraform destroy: %v\n%s", err, out)
	}
	for _, path := range []string{"/floatingips/" + ids["fip"], "/ports/" + ids["port"], "/security-groups/" + ids["sg"],
		"/routers/" + ids["router"], "/subnets/" + ids["subnet"], "/networks/" + ids["network"], "/ports/" + ids["gw2"], "/networks/" + ids["network2"]} {
		if code, err := call("GET", neutron+path, tok, nil, nil); err != nil || code != 404 {
			t.Errorf("GET %s after destroy: %d %v, want 404", path, code, err)
		}
	}
	// The router's gateway address went back to public.
	var left struct{ Ports []port }
	get("/ports?network_id="+ids["public"]+"&device_owner=network:router_gateway", &left)
	if len(left.Ports) != 0 {
		t.Errorf("router gateway ports left on public: %+v", left.Ports)
	}
}

// terraformIn makes dir a Terraform working directory of config (its
// main.tf) for the real terraform and the OpenStack provider built here
// (dev_overrides: no registry, no terraform init), and returns a runner
// of terraform there with env (the cloud's OS_* variables) and colour
// off, bounded in time.
func terraformIn(t *testing.T, dir, config string, env []string) func(args ...string) (string, error) {
	t.Helper()
	tf := terraformBinary(t)
	provider := terraformProvider(t)
	rc := filepath.Join(dir, "tfrc")
	if err := os.WriteFile(rc, []byte(fmt.Sprintf("provider_installation {\n  dev_overrides {\n    \"terraform-provider-openstack/openstack\" = %q\n  }\n  direct {}\n}\n", filepath.Dir(provider))), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	env = append(append([]string{}, env...), "HOME="+dir, "TF_CLI_CONFIG_FILE="+rc, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
	return func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, tf, append(args, "-no-color")...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

// terraformBinary is the terraform CLI on PATH. Terraform is no Debian
// package, and its module does not build from the Go module proxy (its
// go.mod has replace directives), so make deps cannot install it: where
// it is missing the Terraform tests skip saying so, except under
// RACKSTACK_REQUIRE_INTEGRATION (CI), where that fails them
// (testenv.Require): a skipped test there would prove nothing.
func terraformBinary(t *testing.T) string {
	t.Helper()
	tf, err := exec.LookPath("terraform")
	testenv.Require(t, err == nil, fmt.Sprintf("terraform is not on PATH (install Terraform >= 1.0 to run the Terraform tests): %v", err))
	return tf
}

// terraformProvider is the provider binary `make terraform-provider`
// builds into build/; a run without it (go test by hand) builds it there
// the same way, and skips only if that cannot be done.
func terraformProvider(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "build", "terraform-provider-openstack-"+tfProviderVersion))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "terraform-provider-openstack")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goBin, "install", tfProviderModule+"@"+tfProviderVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	out, err := cmd.CombinedOutput()
	testenv.Require(t, err == nil, fmt.Sprintf("cannot build the Terraform OpenStack provider (make terraform-provider): %v\n%s", err, out))
	return bin
}
