// Package buildinfo says which build of Rackstack is running, from what
// the Go toolchain stamps into every binary (module version, VCS revision
// and time). It imports nothing of Rackstack's, so every binary and
// service can report it.
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// version is what `make build` stamps with -ldflags "-X" (git describe),
// for builds where the toolchain records no VCS information
// (GOFLAGS=-buildvcs=false, or a tarball). It is never written at run time.
var version string

// Info is the build of the running binary.
type Info struct {
	Version   string `json:"version"`            // the module version, or "devel"
	Revision  string `json:"revision,omitempty"` // VCS commit
	Time      string `json:"time,omitempty"`     // VCS commit time
	Modified  bool   `json:"modified,omitempty"` // built from a tree with uncommitted changes
	GoVersion string `json:"go_version,omitempty"`
}

// Read returns the build of the running binary.
func Read() Info {
	in := Info{Version: "devel"}
	if version != "" {
		in.Version = version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	in.GoVersion = bi.GoVersion
	if v := bi.Main.Version; version == "" && v != "" && v != "(devel)" {
		in.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// String is the one-line form --version prints: "devel 3f58233 (2026-12-05T07:00:00Z, modified) go1.26".
func (in Info) String() string {
	var b strings.Builder
	b.WriteString(in.Version)
	if in.Revision != "" {
		rev := in.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		b.WriteString(" " + rev)
	}
	var notes []string
	if in.Time != "" {
		notes = append(notes, in.Time)
	}
	if in.Modified {
		notes = append(notes, "modified")
	}
	if len(notes) > 0 {
		b.WriteString(" (" + strings.Join(notes, ", ") + ")")
	}
	if in.GoVersion != "" {
		b.WriteString(" " + in.GoVersion)
	}
	return b.String()
}
