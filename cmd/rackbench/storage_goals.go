package main

import (
	"fmt"
	"io"
)

// Issue 15's goals on the SDK cases, from this run's medians: every PUT
// and GET at least 1.2× MinIO's; the 64 MiB PUT at least 80% of raw
// write (six streams, one per disk directory) × k/(k+m); and beside each
// goal, for information, the ceiling's figure (storage_ceiling.go).
const (
	sdkVsMinIO     = 1.2
	putOfRaw       = 0.8
	codingFraction = 4.0 / 6 // 4+2 over the six disk directories
	putRawSize     = "64MiB"
)

// plainClient names the client of plainGet's figures; plainCase marks
// them apart from the SDK's among the medians.
const (
	plainClient = "net/http, presigned GET"
	plainCase   = "/plain"
)

// storageGoals returns one line per goal the results allow;
// cores is how many CPUs the server and the client share.
func storageGoals(rs []Result, cores int) []string {
	type key struct {
		cas, object, metric string
		conc                int
	}
	med := map[key]float64{}
	raw := 0.0
	var sizes []string
	seen := map[string]bool{}
	for _, r := range rs {
		if r.Suite != "storage" {
			continue
		}
		if r.Case == "raw-disk" && r.Metric == "write" && paramInt(r.Params, "streams") == 6 {
			raw = r.Median
			continue
		}
		obj, ok := r.Params["object"].(string)
		if !ok || r.Params["missing"] != nil || r.Params["read"] != nil {
			continue
		}
		cas := r.Case
		switch r.Params["client"] {
		case "minio-go":
		case plainClient:
			cas += plainCase
		default:
			continue
		}
		med[key{cas, obj, r.Metric, paramInt(r.Params, "concurrency")}] = r.Median
		if !seen[obj] {
			seen[obj] = true
			sizes = append(sizes, obj)
		}
	}
	var out []string
	for _, obj := range sizes {
		for _, conc := range sdkConcurrency {
			// cpu says what a case's CPU per MiB allows on this machine's
			// cores, whatever the load: the server's and the client's
			// milliseconds per MiB are all the cores have.
			cpu := func(cas, phase string) string {
				sv, ok1 := med[key{cas, obj, phase + "_server_cpu", conc}]
				cl, ok2 := med[key{cas, obj, phase + "_client_cpu", conc}]
				if !ok1 || !ok2 || sv+cl <= 0 {
					return ""
				}
				return fmt.Sprintf("; CPU per MiB: server %.2f ms + client %.2f ms, at most %.0f MiB/s on %d cores", sv, cl, float64(cores)*1000/(sv+cl), cores)
			}
			for _, m := range []struct{ phase, name, work string }{{"put", "PUT", "verify + MD5, no storage"}, {"get", "GET", "from memory"}} {
				metric := m.phase + "_throughput"
				rs, ok1 := med[key{"rackstack", obj, metric, conc}]
				mn, ok2 := med[key{"minio", obj, metric, conc}]
				target := ""
				if ok1 && ok2 && mn > 0 {
					target = fmt.Sprintf("target ≥%.0f MiB/s (%.1f× minio)", sdkVsMinIO*mn, sdkVsMinIO)
					out = append(out, fmt.Sprintf("%s %s c=%d vs minio: %.0f / %.0f MiB/s = %.2f×, target ≥%.1f×: %s%s",
						obj, m.name, conc, rs, mn, rs/mn, sdkVsMinIO, verdict(rs/mn >= sdkVsMinIO), cpu("rackstack", m.phase)))
				}
				if m.phase == "get" {
					// The same GETs by a plain client, for information:
					// what the SDK costs beside the server.
					for _, cas := range []string{"rackstack", "minio"} {
						if v, ok := med[key{cas + plainCase, obj, "get_plain_throughput", conc}]; ok {
							sdk := med[key{cas, obj, metric, conc}]
							out = append(out, fmt.Sprintf("%s GET c=%d %s, plain client (%s): %.0f MiB/s against %.0f through minio-go%s (for information)",
								obj, conc, cas, plainClient, v, sdk, cpu(cas+plainCase, "get_plain")))
						}
					}
				}
				if m.phase == "put" && obj == putRawSize && raw > 0 {
					v := putOfRaw * raw * codingFraction
					target = fmt.Sprintf("target ≥%.0f MiB/s (%.1f × raw write %.0f × 4/6)", v, putOfRaw, raw)
					if got, ok := med[key{"rackstack", obj, metric, conc}]; ok {
						out = append(out, fmt.Sprintf("%s PUT c=%d: %.0f MiB/s, %s: %s%s", obj, conc, got, target, verdict(got >= v), cpu("rackstack", m.phase)))
					}
				}
				if v, ok := med[key{ceilingName, obj, metric, conc}]; ok && target != "" {
					out = append(out, fmt.Sprintf("%s %s c=%d ceiling (%s): %.0f MiB/s%s (for information: the most any S3 server could reach for this client against %s)",
						obj, m.name, conc, m.work, v, cpu(ceilingName, m.phase), target))
				}
			}
		}
	}
	return out
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "not met"
}

func printStorageGoals(w io.Writer, lines []string) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, "\nstorage goals (medians from this run):")
	for _, l := range lines {
		fmt.Fprintln(w, "  "+l)
	}
}
