package clilog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDurationsInSeconds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		format Format
		want   string
	}{
		{"text", Text, "took_s=6.284 in_s=0.002 tiny_s=0.0004 rounded_s=5.831 queue=default group.age_s=120\n"},
		{"json", JSON, `"took_s":6.284,"in_s":0.002,"tiny_s":0.0004,"rounded_s":5.831,"queue":"default","group":{"age_s":120}}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log := New(&buf, tt.format, slog.LevelInfo)
			log.Info("job ended", "took", 6284*time.Millisecond, "in", 1500*time.Microsecond, "tiny", 400*time.Microsecond,
				"rounded", 5830999999*time.Nanosecond, "queue", "default", slog.Group("group", "age", 2*time.Minute))
			require.Contains(t, buf.String(), tt.want)
			require.NotContains(t, buf.String(), "6284000000")
			require.NotContains(t, buf.String(), "5.8309999", "rounded to the millisecond")
			if tt.format == JSON {
				var line map[string]any
				require.NoError(t, json.Unmarshal(buf.Bytes(), &line))
				require.InDelta(t, 6.284, line["took_s"], 1e-9, "a number, not a string")
			}
		})
	}
}

// TestSeconds: the rounding, where float arithmetic on Duration.Seconds gives 5.8309999999999995.
func TestSeconds(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		d    time.Duration
		want float64
	}{
		{5831 * time.Millisecond, 5.831},
		{5831*time.Millisecond + 499*time.Microsecond, 5.831},
		{5831*time.Millisecond + 500*time.Microsecond, 5.832},
		{0, 0},
		{1500 * time.Microsecond, 0.002},
		{400 * time.Microsecond, 0.0004},
		{-2 * time.Second, -2},
		{90 * time.Minute, 5400},
	} {
		require.Equal(t, tt.want, Seconds(tt.d), tt.d.String()) // exact: the float that prints as want
	}
}

// TestMaps: a map is name=value pairs in text, sorted, and a JSON object in JSON.
func TestMaps(t *testing.T) {
	t.Parallel()
	queues := map[string]int{"low": 1, "critical": 6, "default": 3}
	tests := []struct {
		name   string
		format Format
		want   string
	}{
		{"text", Text, `queues="critical=6,default=3,low=1" concurrency=5 empty="" list="[a b]"` + "\n"},
		{"json", JSON, `"queues":{"critical":6,"default":3,"low":1},"concurrency":5,"empty":{},"list":["a","b"]}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			New(&buf, tt.format, slog.LevelInfo).Info("worker started", "queues", queues, "concurrency", 5,
				"empty", map[string]int{}, "list", []string{"a", "b"})
			require.Contains(t, buf.String(), tt.want)
			require.NotContains(t, buf.String(), "map[")
		})
	}
}

func TestLevel(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := New(&buf, Text, slog.LevelWarn)
	log.Info("not shown")
	log.Warn("shown")
	require.NotContains(t, buf.String(), "not shown")
	require.Contains(t, buf.String(), "msg=shown")
}
