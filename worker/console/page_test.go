package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/queuereg"
)

// TestListPageParameter: any page parameter of every list gives a page, never a panic: a number
// past the last page (however large, beyond int64 too) shows the last page, and a number below 1
// or no number at all is a 400 that says what would do.
func TestListPageParameter(t *testing.T) {
	t.Parallel()
	b := setupBare(t)
	ctx := context.Background()
	require.NoError(t, queuereg.Register(ctx, b.rc, "default"))
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for i := range 120 { // three pages of dead letters
		d := admin.DeadLetter{ID: fmt.Sprintf("bulk-%03d", i), Queue: "default", Payload: json.RawMessage(`{"v":1,"task":{"type":"x"}}`),
			Record: jobwire.Record{State: enqueue.StateDead, Error: &enqueue.ErrorInfo{ErrorCode: "UNKNOWN_PROVIDER_ERROR"}}, DeadAt: at.Add(time.Duration(i) * time.Minute)}
		data, err := json.Marshal(d)
		require.NoError(t, err)
		require.NoError(t, b.rc.HSet(ctx, keys.DeadLetters("default"), keys.DeadLetterField("default", d.ID), data).Err())
	}
	for i := range 3 { // one page of pending jobs: no worker runs
		_, err := b.client.Submit(ctx, b.job(fmt.Sprintf("wait-%d", i), "default", "sq:solve=1ms", nil))
		require.NoError(t, err)
	}
	web := newSession(t, serve(t, b, false).URL, "", "")
	lists := []struct{ name, query, last string }{
		{"dead", "state=dead", "page 3 of 3"},
		{"dead in one queue", "state=dead&queue=default", "page 3 of 3"},
		{"failed (empty)", "state=failed", "0 jobs"},
		{"in flight", "state=inflight", ">wait-2</a>"},
		{"pending in one queue (asynq's pages)", "state=pending&queue=default", ">wait-2</a>"},
		{"pending everywhere", "state=pending", ">wait-2</a>"},
	}
	pages := []struct {
		page       string
		wantStatus int
		want       string // "" for what the list's last page shows
	}{
		{"99999999999999999999", http.StatusOK, ""},
		{"9223372036854775807", http.StatusOK, ""},
		{"9223372036854775806", http.StatusOK, ""},
		{"1000", http.StatusOK, ""},
		{"0", http.StatusBadRequest, "page must be a whole number from 1 up"},
		{"-1", http.StatusBadRequest, "page must be a whole number from 1 up"},
		{"-99999999999999999999", http.StatusBadRequest, "page must be a whole number from 1 up"},
		{"two", http.StatusBadRequest, "page must be a whole number from 1 up"},
		{"1e3", http.StatusBadRequest, "page must be a whole number from 1 up"},
	}
	for _, l := range lists {
		for _, p := range pages {
			status, body := web.get("/console/jobs?" + l.query + "&page=" + p.page)
			require.Equal(t, p.wantStatus, status, "%s, page=%s: %s", l.name, p.page, body)
			want := p.want
			if want == "" {
				want = l.last
			}
			require.Contains(t, body, want, "%s, page=%s", l.name, p.page)
		}
	}
}
