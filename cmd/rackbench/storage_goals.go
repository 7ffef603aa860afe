package main

import (
	"fmt"
	"io"
)

// Issue 15's goals on the SDK cases, from this run's medians: every PUT
// and GET at least 1.2× MinIO's; the 64 MiB PUT at least 80% of raw
// write (six streams, one per disk directory) × k/(k+m); and beside that
// PUT goal, for information, the PUT ceiling (storage_ceiling.go).
const (
	sdkVsMinIO     = 1.2
	putOfRaw       = 0.8
	codingFraction = 4.0 / 6 // 4+2 over the six disk directories
	putRawSize     = "64MiB"
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
		if !ok || r.Params["client"] != "minio-go" || r.Params["missing"] != nil || r.Params["read"] != nil {
			continue
		}
		med[key{r.Case, obj, r.Metric, paramInt(r.Params, "concurrency")}] = r.Median
		if !seen[obj] {
			seen[obj] = true
			sizes = append(sizes, obj)
		}
	}
	var out []string
	for _, obj := range sizes {
		for _, conc := range sdkConcurrency {
			for _, m := range []struct{ metric, name string }{{"put_throughput", "PUT"}, {"get_throughput", "GET"}} {
				rs, ok1 := med[key{"rackstack", obj, m.metric, conc}]
				mn, ok2 := med[key{"minio", obj, m.metric, conc}]
				if ok1 && ok2 && mn > 0 {
					out = append(out, fmt.Sprintf("%s %s c=%d vs minio: %.0f / %.0f MiB/s = %.2f×, target ≥%.1f×: %s",
						obj, m.name, conc, rs, mn, rs/mn, sdkVsMinIO, verdict(rs/mn >= sdkVsMinIO)))
				}
			}
			if obj != putRawSize || raw <= 0 {
				continue
			}
			target := putOfRaw * raw * codingFraction
			what := fmt.Sprintf("target ≥%.0f MiB/s (%.1f × raw write %.0f × 4/6)", target, putOfRaw, raw)
			// cpu says what a case's CPU per MiB allows on this machine's
			// cores, whatever the load: the server's and the client's
			// milliseconds per MiB are all the cores have.
			cpu := func(cas string) string {
				sv, ok1 := med[key{cas, obj, "put_server_cpu", conc}]
				cl, ok2 := med[key{cas, obj, "put_client_cpu", conc}]
				if !ok1 || !ok2 || sv+cl <= 0 {
					return ""
				}
				return fmt.Sprintf("; CPU per MiB: server %.2f ms + client %.2f ms, at most %.0f MiB/s on %d cores", sv, cl, float64(cores)*1000/(sv+cl), cores)
			}
			if v, ok := med[key{"rackstack", obj, "put_throughput", conc}]; ok {
				out = append(out, fmt.Sprintf("%s PUT c=%d: %.0f MiB/s, %s: %s%s", obj, conc, v, what, verdict(v >= target), cpu("rackstack")))
			}
			if v, ok := med[key{ceilingName, obj, "put_throughput", conc}]; ok {
				out = append(out, fmt.Sprintf("%s PUT c=%d ceiling (verify + MD5, no storage): %.0f MiB/s%s (for information: the most any S3 server could reach for this client against %s)", obj, conc, v, cpu(ceilingName), what))
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
