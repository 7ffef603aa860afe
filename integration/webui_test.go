//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// browser is a headless Chromium the test drives, and where its
// screenshots go.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	chromium := testenv.RequireCommand(t, "/usr/bin/chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		// Chromium refuses its sandbox as root; the pages are our own.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(acancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	shots, _ := filepath.Abs("../build/webui")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, ctx: ctx, shots: shots}
	// The first action starts the browser, for the life of its context:
	// no deadline on this one.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

// run runs actions with a deadline, failing the test with what.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// waitJS waits until a JavaScript expression is true. It evaluates the
// expression again and again rather than polling inside the page: a page
// that reloads (logging out does) destroys a poll running in it.
func (b *browser) waitJS(what, expr string, d time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		var ok bool
		ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	page, _ := b.text("main")
	b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
	b.t.Fatalf("%s: not true within %s (last error %v); page:\n%s", what, d, err, page)
}

// eval evaluates a JavaScript expression and returns its value.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// do runs a statement in the page.
func (b *browser) do(stmt string) {
	b.t.Helper()
	eval[any](b, "void ("+stmt+")")
}

// text is the text of the first element sel matches.
func (b *browser) text(sel string) (string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Error(err)
	}
}

// login fills the console's login form.
func (b *browser) login(url, user, password, project string) {
	b.t.Helper()
	b.run("log in as "+user,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS("#login-user")),
		chromedp.SendKeys(chromedp.CSS("#login-user"), user),
		chromedp.SendKeys(chromedp.CSS("#login-password"), password),
		chromedp.SendKeys(chromedp.CSS("#login-project"), project),
		chromedp.Click(chromedp.CSS("#login-submit")),
	)
	b.waitJS("logged in as "+user, `document.querySelector('#whoami') !== null && document.querySelector('#nav a[data-path="instances"]') !== null`, 30*time.Second)
}

// visit opens a page of the console by its hash and waits for its heading.
func (b *browser) visit(hash string) {
	b.t.Helper()
	b.do(fmt.Sprintf(`location.hash = %q`, hash))
	b.waitJS("open "+hash, `document.querySelector('main h1') !== null && document.querySelector('main .loading') === null`, 30*time.Second)
}

// webNetnsEnv names the namespace TestWebConsole runs in, once it has
// re-executed itself there.
const webNetnsEnv = "RACKSTACK_WEBUI_NETNS"

// TestWebConsole drives the console in a real browser: a member logs in,
// launches an instance, watches it go ACTIVE, types into its serial
// console, sees its charts and deletes it, without any admin page in
// sight; an admin sees the cluster pages.
func TestWebConsole(t *testing.T) {
	testenv.RequireRoot(t, "make taps and load BPF programs")
	for _, c := range []string{"/usr/bin/openstack", "qemu-system-x86_64", "qemu-img", "genisoimage"} {
		testenv.RequireCommand(t, c)
	}
	img := testImage(t)
	// The flat external network "public" (rackd --public) has a host side,
	// a veth: the whole test runs in a namespace of its own, browser
	// included, as TestLayer3 does.
	testenv.RequireCommand(t, "/usr/bin/chromium")
	if inOwnNetns(t, webNetnsEnv, "web", "-test.timeout", "25m") {
		return
	}
	b := newBrowser(t)
	bpfDir := fmt.Sprintf("/sys/fs/bpf/rackstack-wt%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll(bpfDir) })
	n1 := newRackd(t, "w1", "--disk", t.TempDir(), "--dataplane", "on", "--bpf-dir", bpfDir, "--compute", "on", "--accel", "tcg", "--s3-listen", "off",
		"--public", "172.24.4.0/24")
	n1.start("--bootstrap")
	n1.waitHealthy()
	creds := openrc(t, n1.dataDir)
	admin := osEnv(creds, n1)
	deleteServersAtCleanup(t, admin)
	alice := osEnv(creds, n1, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo")
	keyDir := t.TempDir()
	// What does not depend on another step goes at once: the CLI's
	// start-up is most of each step's time.
	setupTestimgAndAlice(t, admin, img)
	inParallel(t, "in demo", map[string]func(t *testing.T){
		"admin": func(t *testing.T) {
			openstack(t, admin, "role", "add", "--project", "demo", "--user", creds["OS_USERNAME"], "member")
			checkIdentityEvents(t, creds, n1)
		},
		"net1": func(t *testing.T) {
			openstack(t, alice, "network", "create", "net1")
			openstack(t, alice, "subnet", "create", "--network", "net1", "--subnet-range", "10.31.0.0/24", "sub1")
		},
		"k1": func(t *testing.T) {
			openstack(t, alice, "keypair", "create", "--private-key", filepath.Join(keyDir, "k1.pem"), "k1")
		},
	})

	// Tools keep reading rackd's JSON at / (curl sends Accept: */*).
	out, err := exec.Command("curl", "-sS", n1.url()+"/").Output()
	if err != nil || !strings.Contains(string(out), `"name":"rackstack"`) {
		t.Errorf("curl /: %v %s", err, out)
	}

	b.login(n1.url(), "alice", "alice-pass-1", "demo")
	// Reported, not asserted: first paint is the static login form.
	t.Logf("first contentful paint %.0f ms", eval[float64](b, `performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1`))
	b.screenshot("login-instances-empty")
	if eval[bool](b, `document.querySelector('#nav a[data-path="cluster"], #nav a[data-path="baremetal"]') !== null`) {
		t.Error("a member's navigation lists admin pages")
	}
	// Typed by hand, an admin page's address lands on the instances.
	b.do(`location.hash = '#/cluster'`)
	b.waitJS("cluster refused to a member", `location.hash === '#/instances' && document.querySelector('main h1')?.textContent === 'Instances'`, 30*time.Second)

	// Launch from the form: one image, flavor and network, so the
	// defaults are the ones made above.
	b.visit("#/instances/new")
	b.waitJS("net1 offered for the launch", `[...document.querySelectorAll('form[aria-label="Launch instance"] [name=network] option')].some(o => o.textContent === 'net1')`, 30*time.Second)
	if eval[bool](b, `[...document.querySelectorAll('form[aria-label="Launch instance"] [name=network] option')].some(o => o.textContent === 'public')`) {
		t.Error("the launch form offers the external network public for a guest's port")
	}
	net1 := strings.TrimSpace(openstack(t, alice, "network", "show", "-f", "value", "-c", "id", "net1"))
	b.run("fill the launch form",
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Launch instance"] [name=name]`), "web1"),
		chromedp.SetValue(chromedp.CSS(`form[aria-label="Launch instance"] [name=network]`), net1),
		chromedp.SetValue(chromedp.CSS(`form[aria-label="Launch instance"] [name=key]`), "k1"),
	)
	b.screenshot("instance-create")
	b.run("launch", chromedp.Click(chromedp.CSS(`form[aria-label="Launch instance"] button[type=submit]`)))
	b.waitJS("instance page", `location.hash.startsWith('#/instances/') && location.hash.length > 20`, 30*time.Second)
	id := strings.TrimPrefix(eval[string](b, `location.hash`), "#/instances/")
	b.waitJS("web1 ACTIVE", `document.querySelector('#server-status')?.textContent.startsWith('ACTIVE')`, 4*time.Minute)

	// The guest reports on its serial port; the log shows it.
	deadline := time.Now().Add(4 * time.Minute)
	var log string
	for time.Now().Before(deadline) && !strings.Contains(log, "RACKSTACK-TEST-IMAGE: ready") {
		b.run("refresh the console log", chromedp.Click(chromedp.CSS("#refresh-log")), chromedp.Sleep(2*time.Second))
		log, _ = b.text("#console-log")
	}
	if !strings.Contains(log, "RACKSTACK-TEST-IMAGE: ready") || !strings.Contains(log, "uuid="+id) {
		t.Fatalf("console log of %s in the page:\n%s", id, log)
	}

	// The live console: what is typed reaches the guest's tty, whose
	// echo comes back into the terminal.
	b.run("open the serial console", chromedp.Click(chromedp.CSS("#open-console")))
	b.waitJS("serial console open", `document.querySelector('#serial')?.dataset.state === 'open'`, 30*time.Second)
	b.run("type into the console", chromedp.SendKeys(chromedp.CSS("#serial .xterm-helper-textarea"), "webui-typed-42\r"))
	b.waitJS("echo in the terminal", `document.querySelector('#serial .xterm-rows')?.textContent.includes('webui-typed-42')`, 30*time.Second)

	// Charts: the history holds the guest's CPU within a few samples.
	ok := eventually(2*time.Minute, func() bool {
		b.run("refresh charts", chromedp.Click(chromedp.CSS("#refresh-charts")), chromedp.Sleep(time.Second))
		return eval[int](b, `Number(document.querySelector('#charts figure')?.dataset.points || 0)`) > 0
	})
	if !ok {
		charts, _ := b.text("#charts")
		b.screenshot("failed-charts")
		t.Fatalf("no CPU chart data for %s: %s", id, charts)
	}
	b.waitJS("chart drawn", `document.querySelector('#charts figure canvas') !== null`, 10*time.Second)
	b.screenshot("instance-detail")

	// The instance page names its image, not only its id.
	if got, err := b.text("#server-image"); err != nil || got != "testimg" {
		t.Errorf("instance page's image: %q %v, want testimg", got, err)
	}

	// A volume attached to web1 from the volumes page and detached again;
	// the event log has each step, by whom (update: alice asked; state:
	// the node did it).
	cell := func(text string) string {
		return fmt.Sprintf(`[...document.querySelectorAll('main td')].some(td => td.textContent.trim() === %q)`, text)
	}
	row := func(name, status string) string {
		return fmt.Sprintf(`[...document.querySelectorAll('main tr')].some(tr => tr.textContent.includes(%q) && tr.textContent.includes(%q))`, name, status)
	}
	// reloadUntil renders the page again until expr holds: the volumes
	// page shows what it read, and a volume moves on without it.
	reloadUntil := func(what, expr string, d time.Duration) {
		t.Helper()
		if !eventually(d, func() bool {
			b.do(`window.dispatchEvent(new HashChangeEvent('hashchange'))`)
			time.Sleep(time.Second)
			return eval[bool](b, "!!("+expr+")")
		}) {
			page, _ := b.text("main")
			b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
			t.Fatalf("%s: not within %s; page:\n%s", what, d, page)
		}
	}
	b.visit("#/volumes")
	b.run("create a volume",
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Create volume"] [name=name]`), "webvol"),
		chromedp.Click(chromedp.CSS(`form[aria-label="Create volume"] button[type=submit]`)))
	b.waitJS("volume listed", cell("webvol"), 30*time.Second)
	reloadUntil("webvol available", row("webvol", "available")+` && document.querySelector('form[aria-label="Attach volume"]') !== null`, time.Minute)
	b.screenshot("member-volumes")
	b.run("attach webvol to web1", chromedp.Click(chromedp.CSS(`form[aria-label="Attach volume"] button[type=submit]`)))
	reloadUntil("webvol in use", row("webvol", "in-use"), 3*time.Minute)
	b.screenshot("member-volume-attached")
	b.run("detach webvol", chromedp.Click(chromedp.CSS(`button[aria-label="Detach webvol"]`)))
	reloadUntil("webvol detached", row("webvol", "available"), 3*time.Minute)
	volID := strings.TrimSpace(openstack(t, alice, "volume", "show", "-f", "value", "-c", "id", "webvol"))
	evs := serverEvents(t, creds, n1, volID)
	for _, want := range []string{"create >creating", "update available>attaching", "state attaching>in-use", "update in-use>detaching", "state detaching>available"} {
		if !hasEventLine(evs, want) {
			t.Errorf("webvol's events lack %q:\n%s", want, strings.Join(evs, "\n"))
		}
	}

	checkFloatingIPPage(t, b, creds, n1, id)

	// Delete, from the instance page: the button asks again.
	b.visit("#/instances/" + id)
	b.run("delete", chromedp.Click(chromedp.CSS("#delete-server")), chromedp.Click(chromedp.CSS("#delete-server")))
	b.waitJS("back on the list", `location.hash === '#/instances'`, 30*time.Second)
	tok := token(t, n1, "alice", "alice-pass-1", "demo")
	if !eventually(2*time.Minute, func() bool {
		code, _ := call("GET", n1.url()+"/compute/v2.1/servers/"+id, tok, nil, nil)
		return code == 404
	}) {
		t.Fatalf("%s not deleted", id)
	}

	// The other pages, each through its form.
	upload := filepath.Join(t.TempDir(), "hello.raw")
	if err := os.WriteFile(upload, bytes.Repeat([]byte("rackstack\n"), 100000), 0o644); err != nil {
		t.Fatal(err)
	}
	b.visit("#/network")
	b.run("create a network",
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Create network"] [name=name]`), "webnet"),
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Create network"] [name=cidr]`), "10.32.0.0/24"),
		chromedp.Click(chromedp.CSS(`form[aria-label="Create network"] button[type=submit]`)))
	b.waitJS("webnet's subnet listed", cell("10.32.0.0/24"), 30*time.Second)
	b.screenshot("member-network")

	b.visit("#/security-groups")
	b.run("add a rule",
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Add rule to default"] [name=min]`), "2222"),
		chromedp.Click(chromedp.CSS(`form[aria-label="Add rule to default"] button[type=submit]`)))
	b.waitJS("rule listed", cell("2222"), 30*time.Second)
	b.screenshot("member-security-groups")

	b.visit("#/images")
	b.run("upload an image",
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Upload image"] [name=name]`), "webimg"),
		chromedp.SetValue(chromedp.CSS(`form[aria-label="Upload image"] [name=disk_format]`), "raw"),
		chromedp.SetUploadFiles(chromedp.CSS(`form[aria-label="Upload image"] [name=file]`), []string{upload}),
		chromedp.Click(chromedp.CSS(`form[aria-label="Upload image"] button[type=submit]`)))
	b.waitJS("webimg active", `[...document.querySelectorAll('main tr')].some(tr => tr.textContent.includes('webimg') && tr.textContent.includes('active'))`, 60*time.Second)
	b.screenshot("member-images")

	b.visit("#/objects")
	b.run("create a container",
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Create container"] [name=name]`), "webc"),
		chromedp.Click(chromedp.CSS(`form[aria-label="Create container"] button[type=submit]`)))
	b.waitJS("container listed", `document.querySelector('main a[href="#/objects/webc"]') !== null`, 30*time.Second)
	b.run("open the container", chromedp.Click(chromedp.CSS(`main a[href="#/objects/webc"]`)))
	b.waitJS("container page", `document.querySelector('main h1')?.textContent === 'Container webc'`, 30*time.Second)
	b.run("upload an object",
		chromedp.SetUploadFiles(chromedp.CSS(`form[aria-label="Upload object"] [name=file]`), []string{upload}),
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Upload object"] [name=name]`), "docs/hello.txt"),
		chromedp.Click(chromedp.CSS(`form[aria-label="Upload object"] button[type=submit]`)))
	b.waitJS("pseudo-folder listed", `document.querySelector('main a[href="#/objects/webc/docs/"]') !== null`, 30*time.Second)
	b.screenshot("member-objects")
	b.run("open the folder", chromedp.Click(chromedp.CSS(`main a[href="#/objects/webc/docs/"]`)))
	b.waitJS("object listed with its size", cell("hello.txt")+" && "+cell("976.6 KiB"), 30*time.Second)
	b.run("download it", chromedp.Click(chromedp.CSS(`button[aria-label="Download docs/hello.txt"]`)))
	b.waitJS("download done", `!document.querySelector('button[aria-label="Download docs/hello.txt"]').disabled`, 30*time.Second)
	if msg := eval[string](b, `document.querySelector('#status.error')?.textContent ?? ''`); msg != "" {
		t.Errorf("download: %s", msg)
	}

	b.visit("#/keypairs")
	b.run("create a key pair",
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Import or create a key pair"] [name=name]`), "webkey"),
		chromedp.Click(chromedp.CSS(`form[aria-label="Import or create a key pair"] button[type=submit]`)))
	b.waitJS("private key shown once", `document.querySelector('#new-private-key pre')?.textContent.includes('PRIVATE KEY')`, 30*time.Second)
	b.screenshot("member-keypairs")

	b.visit("#/events")
	b.waitJS("web1's state changes in the event log", fmt.Sprintf(`document.querySelector('main a[href="#/instances/%s"]') !== null`, id), 30*time.Second)
	b.screenshot("member-events")

	// An admin sees the cluster.
	// Logging out reloads the page, which forgets the token.
	b.run("log out", chromedp.Click(chromedp.CSS("#logout")))
	b.waitJS("logged out", `document.readyState === 'complete' && document.querySelector('#whoami') === null && document.querySelector('#login-user') !== null`, 30*time.Second)
	b.login(n1.url(), creds["OS_USERNAME"], creds["OS_PASSWORD"], creds["OS_PROJECT_NAME"])
	if !eval[bool](b, `document.querySelector('#nav a[data-path="cluster"]') !== null`) {
		t.Fatal("the admin's navigation lacks the cluster page")
	}
	b.visit("#/cluster")
	b.waitJS("cluster leader shown", `document.querySelector('#cluster-leader')?.textContent.includes('w1')`, 30*time.Second)
	b.screenshot("admin-cluster")
	checkBaremetalPowerPage(t, b, admin)

	// The project switcher rescopes: in demo (a member there) the admin
	// sees demo's volume and no admin page.
	b.do(`(() => { const s = document.querySelector('#project-switch'); s.value = [...s.options].find(o => o.text === 'demo').value; s.dispatchEvent(new Event('change')); })()`)
	b.waitJS("switched to demo", `document.querySelector('#project-switch')?.selectedOptions[0]?.text === 'demo' && document.querySelector('#nav a[data-path="cluster"]') === null`, 30*time.Second)
	b.visit("#/volumes")
	b.waitJS("demo's volume listed", cell("webvol"), 30*time.Second)
	b.screenshot("admin-in-demo-volumes")
}

// webCell is a JavaScript test that a cell of the page's tables reads text.
func webCell(text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('main td')].some(td => td.textContent.trim() === %q)`, text)
}

// webRow is a JavaScript test that a row of the page's tables holds every
// one of texts.
func webRow(texts ...string) string {
	var conds []string
	for _, x := range texts {
		conds = append(conds, fmt.Sprintf("tr.textContent.includes(%q)", x))
	}
	return "[...document.querySelectorAll('main tr')].some(tr => " + strings.Join(conds, " && ") + ")"
}

// checkIdentityEvents: making alice, her project and her roles are events
// an admin reads, with who asked and the request id, and no password;
// alice herself reads none of them.
func checkIdentityEvents(t *testing.T, creds map[string]string, n *rackd) {
	t.Helper()
	type event struct {
		ResourceType string `json:"resource_type"`
		Action       string `json:"action"`
		UserID       string `json:"user_id"`
		RequestID    string `json:"request_id"`
	}
	events := func(creds map[string]string, args ...string) ([]event, string) {
		t.Helper()
		out, err := rackctl(t, creds, n, append([]string{"events", "-o", "json"}, args...)...)
		var body struct{ Events []event }
		if err != nil || json.Unmarshal([]byte(out), &body) != nil {
			t.Fatalf("rackctl events %v: %v\n%s", args, err, out)
		}
		return body.Events, out
	}
	aliceID := strings.TrimSpace(openstack(t, osEnv(creds, n), "user", "show", "-f", "value", "-c", "id", "alice"))
	evs, out := events(creds, "--resource", aliceID)
	if len(evs) == 0 || evs[0].ResourceType != "user" || evs[0].Action != "create" || evs[0].UserID == "" || !strings.HasPrefix(evs[0].RequestID, "req-") {
		t.Errorf("alice's events, as the admin reads them:\n%s", out)
	}
	evs, out = events(creds)
	granted := false
	for _, e := range evs {
		granted = granted || e.ResourceType == "role_assignment" && e.Action == "grant" && e.UserID != ""
	}
	if !granted || strings.Contains(out, "alice-pass-1") {
		t.Errorf("the event log lacks a role grant or holds alice's password:\n%s", grepLines(out, "role_assignment"))
	}
	aliceCreds := map[string]string{}
	for k, v := range creds {
		aliceCreds[k] = v
	}
	aliceCreds["OS_USERNAME"], aliceCreds["OS_PASSWORD"], aliceCreds["OS_PROJECT_NAME"] = "alice", "alice-pass-1", "demo"
	if evs, out := events(aliceCreds, "--resource", aliceID); len(evs) != 0 {
		t.Errorf("alice reads identity events:\n%s", out)
	}
}

// checkFloatingIPPage: through the routers page, alice makes a router
// whose gateway is on the external network public (rackd --public, in
// the test's namespace), adds her subnet to it, allocates a floating IP
// and associates it with server's port, then disassociates it.
func checkFloatingIPPage(t *testing.T, b *browser, creds map[string]string, n *rackd, server string) {
	t.Helper()
	admin := osEnv(creds, n)
	if !eventually(30*time.Second, func() bool { _, err := openstackErr(admin, "network", "show", "public"); return err == nil }) {
		t.Fatal("no network public")
	}
	extID := strings.TrimSpace(openstack(t, admin, "network", "show", "-f", "value", "-c", "id", "public"))
	sub1 := strings.TrimSpace(openstack(t, admin, "subnet", "show", "-f", "value", "-c", "id", "sub1"))
	port := strings.TrimSpace(openstack(t, admin, "port", "list", "--server", server, "-f", "value", "-c", "ID"))
	if port == "" || strings.Contains(port, "\n") {
		t.Fatalf("ports of %s: %q", server, port)
	}

	b.visit("#/routers")
	b.run("create a router",
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Create router"] [name=name]`), "webrouter"),
		chromedp.SetValue(chromedp.CSS(`form[aria-label="Create router"] [name=ext]`), extID),
		chromedp.Click(chromedp.CSS(`form[aria-label="Create router"] button[type=submit]`)))
	b.waitJS("router listed with its gateway", webRow("webrouter", "public")+` && document.querySelector('form[aria-label="Add a subnet to a router"]') !== null`, 30*time.Second)
	b.run("add sub1 to the router",
		chromedp.SetValue(chromedp.CSS(`form[aria-label="Add a subnet to a router"] [name=subnet]`), sub1),
		chromedp.Click(chromedp.CSS(`form[aria-label="Add a subnet to a router"] button[type=submit]`)))
	b.waitJS("the router's interface on sub1", webRow("webrouter", "10.31.0.1"), 30*time.Second)
	b.screenshot("member-routers")

	b.run("allocate a floating IP",
		chromedp.SetValue(chromedp.CSS(`form[aria-label="Allocate floating IP"] [name=net]`), extID),
		chromedp.Click(chromedp.CSS(`form[aria-label="Allocate floating IP"] button[type=submit]`)))
	b.waitJS("floating IP listed", webRow("172.24.4.", "public")+` && document.querySelector('form[aria-label="Associate floating IP"]') !== null`, 30*time.Second)
	b.run("associate it with the server's port",
		chromedp.SetValue(chromedp.CSS(`form[aria-label="Associate floating IP"] [name=port]`), port),
		chromedp.Click(chromedp.CSS(`form[aria-label="Associate floating IP"] button[type=submit]`)))
	b.waitJS("floating IP associated", webRow("172.24.4.", "10.31.0.")+` && document.querySelector('button[aria-label^="Disassociate "]') !== null`, 30*time.Second)
	b.screenshot("member-floating-ip-associated")
	type fip struct {
		ID      string `json:"ID"`
		Port    string `json:"Port"`
		FixedIP string `json:"Fixed IP Address"`
	}
	fips := decodeJSON[[]fip](t, openstack(t, admin, "floating", "ip", "list", "-f", "json"))
	if len(fips) != 1 || fips[0].Port != port {
		t.Fatalf("floating IPs after the page associated one with %s: %+v", port, fips)
	}
	b.run("disassociate it", chromedp.Click(chromedp.CSS(`button[aria-label^="Disassociate "]`)))
	b.waitJS("floating IP disassociated", `document.querySelector('button[aria-label^="Disassociate "]') === null && document.querySelector('form[aria-label="Associate floating IP"]') !== null`, 30*time.Second)
	b.screenshot("member-floating-ip-disassociated")
	fips = decodeJSON[[]fip](t, openstack(t, admin, "floating", "ip", "list", "-f", "json"))
	if len(fips) != 1 || fips[0].Port != "" {
		t.Fatalf("floating IPs after the page disassociated: %+v", fips)
	}
	evs := strings.Join(serverEvents(t, creds, n, fips[0].ID), "\n")
	if !strings.Contains(evs, "associated with port "+port) || !strings.Contains(evs, "no longer associated with port "+port) {
		t.Errorf("the floating IP's events lack its association and disassociation:\n%s", evs)
	}
}

// checkBaremetalPowerPage: a node enrolled with the fake-hardware driver
// is listed on the bare-metal page, and its page's Power on button asks
// for power on, which the node then shows as its target (this node runs
// no conductor to carry it out).
func checkBaremetalPowerPage(t *testing.T, b *browser, admin []string) {
	t.Helper()
	node := decodeJSON[map[string]any](t, openstack(t, admin, "baremetal", "node", "create", "-f", "json", "--driver", "fake-hardware", "--name", "webbm"))
	uuid, _ := node["uuid"].(string)
	b.visit("#/baremetal")
	b.waitJS("node listed", webCell("webbm"), 30*time.Second)
	b.screenshot("admin-baremetal")
	b.visit("#/baremetal/" + uuid)
	b.waitJS("node page", `document.querySelector('main h1')?.textContent === 'Node webbm'`, 30*time.Second)
	b.do(`[...document.querySelectorAll('[aria-label="Power"] button')].find(x => x.textContent === 'Power on').click()`)
	b.waitJS("power on asked", `document.querySelector('#node-power')?.textContent.includes('power on')`, 30*time.Second)
	b.screenshot("admin-baremetal-node-power")
	got := decodeJSON[map[string]any](t, openstack(t, admin, "baremetal", "node", "show", "-f", "json", "webbm"))
	if got["target_power_state"] != "power on" && got["power_state"] != "power on" {
		t.Fatalf("after Power on from the page: power %v, target %v", got["power_state"], got["target_power_state"])
	}
}
