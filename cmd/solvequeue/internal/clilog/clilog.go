// Package clilog makes the command's loggers, so that every command writes the same way: text
// for people or JSON for programs. Every time.Duration is a number of seconds, rounded to the
// millisecond, under its key with "_s" added ("took_s":6.284), never Go's nanoseconds
// ("took":6284000000) nor a string that a program must parse ("took":"6.284s"). A map is a JSON
// object in JSON and name=value pairs in text (queues="critical=6,default=3"), never Go's
// "map[critical:6 default:3]".
package clilog

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"time"
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
	if format == JSON {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: DurationsInSeconds}))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: textAttr}))
}

// DurationsInSeconds is the loggers' slog.HandlerOptions.ReplaceAttr: a time.Duration becomes
// its seconds as a float rounded to the millisecond (to the microsecond below a millisecond, so
// that a short wait never reads 0), under its key with "_s" added. Any other attribute is kept.
func DurationsInSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindDuration {
		return a
	}
	return slog.Float64(a.Key+"_s", Seconds(a.Value.Duration()))
}

// Seconds is d in seconds, rounded to the millisecond, or to the microsecond when that would
// round a non-zero d to 0: 5831 ms is 5.831, not 5.8309999999999995.
func Seconds(d time.Duration) float64 {
	if ms := d.Round(time.Millisecond); ms != 0 || d == 0 {
		return float64(ms.Milliseconds()) / 1e3
	}
	return float64(d.Round(time.Microsecond).Microseconds()) / 1e6
}

// textAttr is the text logger's ReplaceAttr: durations as DurationsInSeconds makes them, and a
// map as its name=value pairs sorted by name, comma-separated.
func textAttr(groups []string, a slog.Attr) slog.Attr {
	a = DurationsInSeconds(groups, a)
	if a.Value.Kind() != slog.KindAny {
		return a
	}
	v := reflect.ValueOf(a.Value.Any())
	if v.Kind() != reflect.Map {
		return a
	}
	pairs := make([]string, 0, v.Len())
	for it := v.MapRange(); it.Next(); {
		pairs = append(pairs, fmt.Sprint(it.Key().Interface())+"="+fmt.Sprint(it.Value().Interface()))
	}
	slices.SortFunc(pairs, func(x, y string) int {
		kx, _, _ := strings.Cut(x, "=")
		ky, _, _ := strings.Cut(y, "=")
		return cmp.Or(cmp.Compare(kx, ky), cmp.Compare(x, y))
	})
	return slog.String(a.Key, strings.Join(pairs, ","))
}
