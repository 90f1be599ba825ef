package admin_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/redisconn"
)

// TestRedriveIsAFreshStart: a redriven dead letter is enqueued with its timings counted from
// the redrive, a deadline that passed replaced by one as long as the job first had (a deadline
// still ahead kept, one without a positive span dropped), and the next outcome sequence number;
// every other field of the job is kept as it was.
func TestRedriveIsAFreshStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := enqueuetest.Redis(t)
	rc, err := redisconn.Open(ctx, r.URL(), 0)
	require.NoError(t, err)
	t.Cleanup(func() { rc.Close() })
	submitted := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	redriveAt := submitted.Add(30 * time.Hour)
	c, err := admin.NewClient(admin.Config{Redis: rc, Now: func() time.Time { return redriveAt }})
	require.NoError(t, err)

	tests := []struct {
		name         string
		payload      map[string]any // on top of a valid job submitted at submitted
		wantDeadline time.Time      // zero: none
		wantSpan     time.Duration
		wantSeq      int
	}{
		{name: "deadline passed: as long as the first", payload: map[string]any{"deadline": submitted.Add(10 * time.Minute)},
			wantDeadline: redriveAt.Add(10 * time.Minute), wantSpan: 10 * time.Minute, wantSeq: 2},
		{name: "deadline ahead by less than its span: its whole span again", payload: map[string]any{"deadline": redriveAt.Add(time.Hour)},
			wantDeadline: redriveAt.Add(31 * time.Hour), wantSpan: 31 * time.Hour, wantSeq: 2},
		{name: "deadline a few seconds ahead (the job died because its next try came too late): its whole span", payload: map[string]any{
			"submittedAt": redriveAt.Add(-20 * time.Minute), "deadline": redriveAt.Add(3 * time.Second)},
			wantDeadline: redriveAt.Add(20*time.Minute + 3*time.Second), wantSpan: 20*time.Minute + 3*time.Second, wantSeq: 2},
		{name: "second redrive: the first span, not what was left", payload: map[string]any{
			"submittedAt": submitted.Add(time.Hour), "deadline": submitted.Add(time.Hour + time.Minute),
			"redrives": 1, "deadlineSpan": 10 * time.Minute},
			wantDeadline: redriveAt.Add(10 * time.Minute), wantSpan: 10 * time.Minute, wantSeq: 3},
		{name: "no deadline: none", payload: map[string]any{}, wantSeq: 2},
		{name: "deadline passed before submission: dropped", payload: map[string]any{"deadline": submitted.Add(-time.Minute)},
			wantSeq: 2},
		{name: "deadline passed, no submission time: dropped", payload: map[string]any{"submittedAt": nil,
			"deadline": submitted.Add(time.Minute)}, wantSeq: 2},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "fresh-" + string(rune('a'+i))
			raw := map[string]any{"v": 1, "submittedAt": submitted, "callbackUrl": "https://hooks.example/cb",
				"gatewayTaskId": 4242, "keyName": "alpha",
				"task": map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://shop.example/login",
					"websiteKey": "k", "minScore": json.Number("123456789012345678901")}}
			for k, v := range tt.payload {
				raw[k] = v
				if v == nil {
					delete(raw, k)
				}
			}
			data, err := json.Marshal(raw)
			require.NoError(t, err)
			first, err := jobwire.DecodePayload(data)
			require.NoError(t, err)
			d := admin.DeadLetter{ID: id, Queue: "default", Payload: data, DeadAt: submitted.Add(time.Hour),
				Record: jobwire.Record{State: jobwire.StateDead, Attempts: 3}}
			require.NoError(t, deadletter.Put(ctx, rc, d, 0))

			require.NoError(t, c.Redrive(ctx, d))
			info, err := asynq.NewInspectorFromRedisClient(rc).GetTaskInfo("default", id)
			require.NoError(t, err)
			p, err := jobwire.DecodePayload(info.Payload)
			require.NoError(t, err, "the redriven payload is a solve job: %s", info.Payload)
			require.True(t, redriveAt.Equal(p.SubmittedAt), "timings count from the redrive: %s", p.SubmittedAt)
			require.True(t, tt.wantDeadline.Equal(p.Deadline), "deadline %s, want %s", p.Deadline, tt.wantDeadline)
			require.Equal(t, tt.wantSpan, p.DeadlineSpan)
			require.Equal(t, first.OutcomeSeq()+1, p.OutcomeSeq())
			require.Equal(t, tt.wantSeq, p.OutcomeSeq())

			// Everything else is the job as it was, numbers and fields whole.
			var got, want map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(info.Payload, &got))
			require.NoError(t, json.Unmarshal(data, &want))
			for _, k := range []string{"submittedAt", "deadline", "redrives", "deadlineSpan"} {
				delete(got, k)
				delete(want, k)
			}
			require.Equal(t, want, got)
			require.Contains(t, string(info.Payload), `"minScore":123456789012345678901`)
		})
	}
}
