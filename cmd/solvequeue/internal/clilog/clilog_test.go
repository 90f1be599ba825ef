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
		{"text", Text, "took_s=6.284 in_s=0.0015 queue=default group.age_s=120\n"},
		{"json", JSON, `"took_s":6.284,"in_s":0.0015,"queue":"default","group":{"age_s":120}}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log := New(&buf, tt.format, slog.LevelInfo)
			log.Info("job ended", "took", 6284*time.Millisecond, "in", 1500*time.Microsecond, "queue", "default",
				slog.Group("group", "age", 2*time.Minute))
			require.Contains(t, buf.String(), tt.want)
			require.NotContains(t, buf.String(), "6284000000")
			if tt.format == JSON {
				var line map[string]any
				require.NoError(t, json.Unmarshal(buf.Bytes(), &line))
				require.InDelta(t, 6.284, line["took_s"], 1e-9, "a number, not a string")
			}
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
