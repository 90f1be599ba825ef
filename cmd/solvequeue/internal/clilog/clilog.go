// Package clilog makes the command's loggers, so that every command writes the same way: text
// for people or JSON for programs, and every time.Duration as a number of seconds under its key
// with "_s" added ("took_s":6.284), never Go's nanoseconds ("took":6284000000) nor a string that
// a program must parse ("took":"6.284s").
package clilog

import (
	"io"
	"log/slog"
)

// Format is how a logger writes its lines.
type Format int

const (
	// Text writes key=value lines, for a terminal.
	Text Format = iota
	// JSON writes one JSON object per line, for a log collector.
	JSON
)

// New returns a logger that writes lines at level and above to w in format.
func New(w io.Writer, format Format, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: DurationsInSeconds}
	if format == JSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// DurationsInSeconds is the loggers' slog.HandlerOptions.ReplaceAttr: a time.Duration becomes
// its seconds as a float, under its key with "_s" added. Any other attribute is kept.
func DurationsInSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindDuration {
		return a
	}
	return slog.Float64(a.Key+"_s", a.Value.Duration().Seconds())
}
