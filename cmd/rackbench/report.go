package main

import (
	"encoding/json"
	"fmt"
	"html/template"
	"os"
	"sort"
	"strings"
	"time"
)

// report is what -o html FILE writes: one self-contained page (no
// external scripts, styles or fonts, so it can be mailed and archived)
// with the command line, the cluster's shape, a bar chart per metric —
// every case of this run beside the baselines measured with it and, with
// --compare, beside the earlier run — and the full table.
type report struct {
	Command      string
	Began        time.Time
	Took         time.Duration
	Shape        clusterShape
	Results      []Result
	Previous     []Result
	PreviousName string
}

// readResults reads the output of an earlier `-o json` run.
func readResults(path string) ([]Result, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rs []Result
	if err := json.Unmarshal(raw, &rs); err != nil {
		return nil, fmt.Errorf("read %s: not the JSON array of a -o json run: %w", path, err)
	}
	return rs, nil
}

// paramLabel is a result's params as "k=v k=v", keys sorted.
func paramLabel(p map[string]any) string {
	var ps []string
	for k, v := range p {
		ps = append(ps, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(ps)
	return strings.Join(ps, " ")
}

// chart is one metric's bars, grouped by params.
type chart struct {
	Title  string
	Unit   string
	Groups []barGroup
	Series []series
	// Layout, filled by layout: SVG size and each bar's box.
	Width, Height int
	Bars          []bar
	Labels        []label
}

type series struct {
	Name  string
	Color string
}

type barGroup struct {
	Label  string
	Values []float64 // per series; NaN-free: missing is -1
}

type bar struct {
	X, Y, W, H int
	Color      string
	Text       string
	TextX      int
}

type label struct {
	X, Y int
	Text string
}

var palette = []string{"#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#718096", "#319795", "#b7791f"}

// charts builds a chart per (suite, metric): a group per params, a bar
// per case of this run and per case of the previous run.
func charts(cur, prev []Result) []chart {
	type chartKey struct{ suite, metric string }
	var order []chartKey
	byChart := map[chartKey]*chart{}
	seriesIdx := map[chartKey]map[string]int{}
	groupIdx := map[chartKey]map[string]int{}
	add := func(r Result, seriesName string) {
		k := chartKey{r.Suite, r.Metric}
		c := byChart[k]
		if c == nil {
			c = &chart{Title: r.Suite + ": " + r.Metric, Unit: r.Unit}
			byChart[k], seriesIdx[k], groupIdx[k] = c, map[string]int{}, map[string]int{}
			order = append(order, k)
		}
		si, ok := seriesIdx[k][seriesName]
		if !ok {
			si = len(c.Series)
			seriesIdx[k][seriesName] = si
			c.Series = append(c.Series, series{Name: seriesName, Color: palette[si%len(palette)]})
		}
		g := paramLabel(r.Params)
		gi, ok := groupIdx[k][g]
		if !ok {
			gi = len(c.Groups)
			groupIdx[k][g] = gi
			c.Groups = append(c.Groups, barGroup{Label: g})
		}
		for len(c.Groups[gi].Values) <= si {
			c.Groups[gi].Values = append(c.Groups[gi].Values, -1)
		}
		c.Groups[gi].Values[si] = r.Median
	}
	for _, r := range cur {
		add(r, r.Case)
	}
	for _, r := range prev {
		if _, ok := byChart[chartKey{r.Suite, r.Metric}]; ok {
			add(r, r.Case+" (previous)")
		}
	}
	out := make([]chart, 0, len(order))
	for _, k := range order {
		c := byChart[k]
		c.layout()
		out = append(out, *c)
	}
	return out
}

// layout places horizontal bars: each group's label on a line, then one
// bar per series with a value, scaled to the chart's largest value.
func (c *chart) layout() {
	const width, left, barH, gap, labelH = 540, 6, 14, 3, 16
	maxV := 0.0
	for _, g := range c.Groups {
		for _, v := range g.Values {
			maxV = max(maxV, v)
		}
	}
	plotW := width - left - 110
	y := 4
	for _, g := range c.Groups {
		c.Labels = append(c.Labels, label{X: left, Y: y + 12, Text: g.Label})
		y += labelH
		for si, v := range g.Values {
			if v < 0 {
				continue
			}
			w := 1
			if maxV > 0 {
				w = max(1, int(v/maxV*float64(plotW)))
			}
			c.Bars = append(c.Bars, bar{X: left, Y: y, W: w, H: barH, Color: c.Series[si].Color, Text: fmt.Sprintf("%.4g %s", v, c.Unit), TextX: left + w + 4})
			y += barH + gap
		}
		y += 6
	}
	c.Width, c.Height = width, y+4
}

func writeReport(path string, rep report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	data := struct {
		report
		Charts []chart
	}{rep, charts(rep.Results, rep.Previous)}
	if err := reportPage.Execute(f, data); err != nil {
		f.Close()
		return fmt.Errorf("write report: %w", err)
	}
	return f.Close()
}

var reportPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"params": paramLabel,
	"runs": func(xs []float64) string {
		var s []string
		for _, x := range xs {
			s = append(s, fmt.Sprintf("%.4g", x))
		}
		return strings.Join(s, " ")
	},
	"add": func(a, b int) int { return a + b },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>rackbench report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1a202c;max-width:1180px}
.charts{display:flex;flex-wrap:wrap;gap:8px 28px} .chart{width:560px}
h1{font-size:22px;margin:0 0 8px} h2{font-size:17px;margin:28px 0 8px} h3{font-size:14px;margin:18px 0 4px}
code{background:#edf2f7;padding:2px 4px;border-radius:3px}
table{border-collapse:collapse;font-size:12px} td,th{border:1px solid #cbd5e0;padding:3px 6px;text-align:left}
th{background:#edf2f7} td.n{text-align:right;font-variant-numeric:tabular-nums}
.legend span{display:inline-block;margin-right:14px} .legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
svg text{font:11px system-ui,sans-serif;fill:#1a202c}
</style></head><body>
<h1>rackbench report</h1>
<p>Command: <code>{{.Command}}</code><br>Started {{.Began.UTC.Format "2006-01-02 15:04:05 MST"}}, took {{.Took.Round 1000000000}}.
{{if .PreviousName}}<br>Compared with: <code>{{.PreviousName}}</code> (bars marked “previous”).{{end}}</p>
{{if .Shape.Nodes}}<h2>Cluster</h2>
<p>{{len .Shape.Nodes}} node(s){{if .Shape.Coding}}, erasure coding {{.Shape.Coding}}{{end}}{{if .Shape.Disks}}, {{.Shape.Disks}} storage disk(s), {{printf "%.1f" .Shape.FreeGB}} GiB free{{end}}.</p>
<table><tr><th>node</th><th>CPU</th><th>CPUs</th><th>memory GiB</th><th>block devices</th><th>kernel</th></tr>
{{range .Shape.Nodes}}<tr><td>{{.Name}}</td><td>{{.CPU}}</td><td class="n">{{.CPUs}}</td><td class="n">{{printf "%.1f" .MemoryGB}}</td><td class="n">{{.Disks}}</td><td>{{.Kernel}}</td></tr>
{{end}}</table>{{end}}
<h2>Charts</h2>
<div class="charts">{{range .Charts}}<div class="chart"><h3>{{.Title}} ({{.Unit}})</h3>
<div class="legend">{{range .Series}}<span><i style="background:{{.Color}}"></i>{{.Name}}</span>{{end}}</div>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="{{.Title}}">
{{range .Labels}}<text x="{{.X}}" y="{{.Y}}">{{.Text}}</text>
{{end}}{{range .Bars}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="{{.Color}}"></rect><text x="{{.TextX}}" y="{{add .Y 11}}">{{.Text}}</text>
{{end}}</svg></div>
{{end}}</div>
<h2>Results</h2>
<table><tr><th>suite</th><th>case</th><th>params</th><th>metric</th><th>median</th><th>unit</th><th>runs</th></tr>
{{range .Results}}<tr><td>{{.Suite}}</td><td>{{.Case}}</td><td>{{params .Params}}</td><td>{{.Metric}}</td><td class="n">{{printf "%.4g" .Median}}</td><td>{{.Unit}}</td><td>{{runs .Runs}}</td></tr>
{{end}}</table>
{{if .Previous}}<h2>Previous run</h2>
<table><tr><th>suite</th><th>case</th><th>params</th><th>metric</th><th>median</th><th>unit</th></tr>
{{range .Previous}}<tr><td>{{.Suite}}</td><td>{{.Case}}</td><td>{{params .Params}}</td><td>{{.Metric}}</td><td class="n">{{printf "%.4g" .Median}}</td><td>{{.Unit}}</td></tr>
{{end}}</table>{{end}}
</body></html>
`))
