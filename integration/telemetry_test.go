//go:build integration

package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkInstanceTelemetry checks a running guest's CPU in /metrics (admin)
// and in the history (its project's token), and that the history keeps
// it from other projects' families.
func checkInstanceTelemetry(t *testing.T, n *rackd, adminTok, projectTok, project, serverID string) {
	t.Helper()
	req, _ := http.NewRequest("GET", n.url()+"/metrics", nil)
	req.Header.Set("X-Auth-Token", adminTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	line := regexp.MustCompile(`(?m)^rackstack_instance_cpu_seconds_total\{project_id="` + project + `",server_id="` + serverID + `"\} (\S+)$`).FindStringSubmatch(string(raw))
	if line == nil {
		t.Errorf("no CPU series of %s (project %s) in /metrics:\n%s", serverID, project, grepLines(string(raw), "rackstack_instance_cpu"))
	} else if v, _ := strconv.ParseFloat(line[1], 64); v <= 0 {
		t.Errorf("%s used %v CPU seconds", serverID, v)
	}
	for _, fam := range []string{"rackstack_instance_memory_bytes", "rackstack_instance_network_transmit_bytes_total", "rackstack_instance_disk_read_bytes_total", "rackstack_node_vcpus_allocated"} {
		if !strings.Contains(string(raw), fam+"{") {
			t.Errorf("no %s in /metrics", fam)
		}
	}

	var hist struct {
		Step   float64 `json:"step_seconds"`
		Series []struct {
			Labels map[string]string `json:"labels"`
			Points [][2]float64      `json:"points"`
		} `json:"series"`
	}
	// Two points at least: the history is sampled every second here.
	ok := eventually(30*time.Second, func() bool {
		code, err := call("GET", n.url()+"/rackstack/v1/history?family=rackstack_instance_cpu_seconds_total&server_id="+serverID, projectTok, nil, &hist)
		return err == nil && code == 200 && len(hist.Series) == 1 && len(hist.Series[0].Points) >= 2
	})
	if !ok {
		t.Fatalf("history of %s's CPU: %+v", serverID, hist)
	}
	s := hist.Series[0]
	if s.Labels["project_id"] != project || s.Labels["node"] != n.name {
		t.Errorf("history labels %v", s.Labels)
	}
	for i := 1; i < len(s.Points); i++ {
		if s.Points[i][0] <= s.Points[i-1][0] || s.Points[i][1] < s.Points[i-1][1] {
			t.Errorf("history points out of order or a counter going down: %v", s.Points)
			break
		}
	}
	var e map[string]any
	if code, _ := call("GET", n.url()+"/rackstack/v1/history?family=rackstack_node_vcpus", projectTok, nil, &e); code != 403 {
		t.Errorf("a project read a node family's history: %d %v", code, e)
	}
	if code, _ := call("GET", n.url()+"/rackstack/v1/history?family=rackstack_instance_cpu_seconds_total&project_id=another", projectTok, nil, &e); code != 403 {
		t.Errorf("a project asked for another's series: %d %v", code, e)
	}
}

// serverEvents is `rackctl events --resource ID -o json` as
// "action from>to" lines.
func serverEvents(t *testing.T, creds map[string]string, n *rackd, id string) []string {
	t.Helper()
	out, err := rackctl(t, creds, n, "events", "--resource", id, "-o", "json")
	if err != nil {
		t.Fatalf("rackctl events: %v\n%s", err, out)
	}
	var body struct {
		Events []struct {
			Action, From, To, Reason string
			UserID                   string `json:"user_id"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &body); err != nil {
		t.Fatalf("rackctl events: %v\n%s", err, out)
	}
	var lines []string
	for _, e := range body.Events {
		lines = append(lines, e.Action+" "+e.From+">"+e.To+" "+e.Reason)
	}
	return lines
}

func hasEventLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// checkRackctlConsole attaches `rackctl console` to a running guest: Enter
// gets the guest's answer on stdout, Ctrl-] ends it cleanly.
func checkRackctlConsole(t *testing.T, creds map[string]string, n *rackd, server string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "rackctl"), "console", server)
	cmd.Env = osEnv(creds, n)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("rackctl console: %v", err)
	}
	got := make(chan int, 1)
	go func() {
		buf := make([]byte, 4096)
		n, _ := stdout.Read(buf)
		got <- n
		io.Copy(io.Discard, stdout)
	}()
	stdin.Write([]byte("\r"))
	select {
	case n := <-got:
		if n == 0 {
			t.Errorf("rackctl console: no answer from the guest; stderr:\n%s", stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Errorf("rackctl console: no answer from the guest in 20 s; stderr:\n%s", stderr.String())
	}
	stdin.Write([]byte{0x1d})
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(stderr.String(), "Escape character is '^]'") {
			t.Errorf("rackctl console after Ctrl-]: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill() // the rackctl this test started
		<-done
		t.Errorf("rackctl console did not end at Ctrl-]; stderr:\n%s", stderr.String())
	}
}
