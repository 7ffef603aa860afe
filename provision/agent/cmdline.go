package agent

import "strings"

// KernelArgs reads the key=value words of a kernel command line
// (/proc/cmdline); a bare word maps to "". The last of repeated keys wins,
// as in the kernel.
func KernelArgs(cmdline string) map[string]string {
	out := map[string]string{}
	for _, w := range strings.Fields(cmdline) {
		k, v, _ := strings.Cut(w, "=")
		out[k] = strings.Trim(v, `"`)
	}
	return out
}
