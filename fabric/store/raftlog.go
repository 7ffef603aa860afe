package store

import (
	"context"
	"io"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// RaftLogger routes hashicorp/raft's own log lines (warnings and up)
// through log, so a node's log has one format; name becomes the lines'
// "component". A nil log is slog.Default().
func RaftLogger(log *slog.Logger, name string) hclog.Logger {
	if log == nil {
		log = slog.Default()
	}
	l := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: name, Level: hclog.Warn, Output: io.Discard})
	l.RegisterSink(slogSink{log: log.With("component", name)})
	return l
}

// slogSink receives every line the intercept logger is given.
type slogSink struct{ log *slog.Logger }

func (s slogSink) Accept(_ string, level hclog.Level, msg string, args ...any) {
	var l slog.Level
	switch {
	case level < hclog.Warn:
		return // raft's info lines are per-election chatter
	case level == hclog.Warn:
		l = slog.LevelWarn
	default:
		l = slog.LevelError
	}
	s.log.Log(context.Background(), l, msg, args...)
}
