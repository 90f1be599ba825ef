package chaos

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// TestRecorderKeepsTheFakesAnswers drives the fake through the recorder with the real client
// and requires the recorder to hold what the fake answered and counted.
func TestRecorderKeepsTheFakesAnswers(t *testing.T) {
	t.Parallel()
	fake := anysolvertest.New(anysolvertest.Options{Script: anysolvertest.DirectiveScript(nil)})
	rec := newRecorder(fake)
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	client, err := anysolver.New(anysolver.Config{BaseURL: srv.URL, APIKey: "sk-recorder-test-5d1c"})
	require.NoError(t, err)
	key := "sq:id=a;create=SERVICE_UNAVAILABLE;failed=CAPTCHA_UNSOLVABLE;solve=0s"
	task := map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://x.example", "websiteKey": key}
	ctx := t.Context()

	_, err = client.CreateTask(ctx, anysolver.CreateTaskRequest{Task: task})
	require.Error(t, err)
	first, err := client.CreateTask(ctx, anysolver.CreateTaskRequest{Task: task})
	require.NoError(t, err)
	_, err = client.GetTaskResult(ctx, first.TaskID)
	require.Error(t, err, "the first task fails")
	second, err := client.CreateTask(ctx, anysolver.CreateTaskRequest{Task: task})
	require.NoError(t, err)
	res, err := client.GetTaskResult(ctx, second.TaskID)
	require.NoError(t, err)

	calls := rec.calls(key)
	require.Len(t, calls.creates, 3)
	require.Equal(t, "SERVICE_UNAVAILABLE", calls.creates[0].Code)
	require.Empty(t, calls.creates[0].TaskID, "an error answer is no paid task")
	require.NotEmpty(t, calls.creates[1].TaskID)
	require.Len(t, calls.polls, 2)
	require.Equal(t, "failed", calls.polls[0].Status)
	require.Equal(t, "CAPTCHA_UNSOLVABLE", calls.polls[0].Code)
	require.Equal(t, "ready", calls.polls[1].Status)
	require.Equal(t, token(res.Solution), calls.polls[1].Token)
	st := fake.Stats()
	require.Equal(t, 3, st.Creates)
	require.Equal(t, 2, st.Created)
}

func TestPaidTasks(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	paid := func(s float64, id string) call { return call{At: at(s), TaskID: id} }
	answered := func(s float64, id string) call { return call{At: at(s), TaskID: id, Status: "ready"} }
	tests := []struct {
		name     string
		creates  []call
		polls    []call
		kills    []float64
		redisOff [][2]float64
		redrives []float64
		allowed  int
		crash    int
		problems int
	}{
		{name: "one task", creates: []call{paid(1, "a")}, allowed: 1},
		{name: "a refused createTask is not paid", creates: []call{{At: at(1), Code: "SERVICE_UNAVAILABLE"}, paid(3, "a")}, allowed: 1},
		{name: "the first answered failed", creates: []call{paid(1, "a"), paid(5, "b")},
			polls: []call{{At: at(4), TaskID: "a", Status: "failed", Code: "CAPTCHA_UNSOLVABLE"}}, allowed: 2},
		{name: "paid twice", creates: []call{paid(1, "a"), paid(9, "b")}, polls: []call{answered(10, "b")}, allowed: 1, problems: 1},
		{name: "across a redrive", creates: []call{paid(1, "a"), paid(30, "b")}, redrives: []float64{20}, allowed: 2},
		{name: "after the task expired", creates: []call{paid(1, "a"), paid(400, "b")}, allowed: 2},
		{name: "a kill in the crash window", creates: []call{paid(1, "a"), paid(90, "b")}, kills: []float64{3}, allowed: 2, crash: 1},
		{name: "a kill past the crash window", creates: []call{paid(1, "a"), paid(90, "b")}, kills: []float64{20}, allowed: 1, problems: 1},
		{name: "Redis down stretches the window", creates: []call{paid(1, "a"), paid(90, "b")}, kills: []float64{20},
			redisOff: [][2]float64{{2, 18}}, allowed: 2, crash: 1},
		{name: "one kill explains one second payment", creates: []call{paid(1, "a"), paid(2, "b"), paid(90, "c")}, kills: []float64{3},
			allowed: 2, crash: 1, problems: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &run{start: start}
			for _, k := range tt.kills {
				r.kills = append(r.kills, at(k))
			}
			for _, o := range tt.redisOff {
				r.redisOff = append(r.redisOff, [2]time.Time{at(o[0]), at(o[1])})
			}
			var redrives []time.Time
			for _, d := range tt.redrives {
				redrives = append(redrives, at(d))
			}
			paidN, allowed, crash, problems := r.paidTasks(jobCalls{creates: tt.creates, polls: tt.polls}, redrives)
			n := 0
			for _, c := range tt.creates {
				if c.TaskID != "" {
					n++
				}
			}
			require.Equal(t, n, paidN)
			require.Equal(t, tt.allowed, allowed)
			require.Equal(t, tt.crash, crash)
			require.Len(t, problems, tt.problems, "%v", problems)
		})
	}
}

func TestCallbackProblems(t *testing.T) {
	t.Parallel()
	solved := enqueue.Outcome{State: enqueue.StateSolved, Solution: json.RawMessage(`{"token":"tok-2"}`)}
	dead := enqueue.Outcome{State: enqueue.StateDead, Error: &enqueue.ErrorInfo{ErrorCode: "UNKNOWN_PROVIDER_ERROR"}}
	ready := func(seq int, tok string) delivery { return delivery{Status: "ready", Token: tok, OutcomeSeq: seq} }
	failed := func(seq int, code string) delivery {
		return delivery{Status: "failed", ErrorCode: code, OutcomeSeq: seq}
	}
	tests := []struct {
		name     string
		out      enqueue.Outcome
		ds       []delivery
		outcomes int
		problems int
	}{
		{"one outcome, delivered", solved, []delivery{ready(1, "tok-2")}, 1, 0},
		{"nothing delivered", solved, nil, 1, 1},
		{"both outcomes, out of order", solved, []delivery{ready(2, "tok-2"), failed(1, "UNKNOWN_PROVIDER_ERROR")}, 2, 0},
		{"the redriven outcome dropped", solved, []delivery{failed(1, "UNKNOWN_PROVIDER_ERROR")}, 2, 2},
		{"without seq: too few deliveries", solved, []delivery{failed(0, "UNKNOWN_PROVIDER_ERROR")}, 2, 2},
		{"without seq: enough, the last one right", solved, []delivery{failed(0, "UNKNOWN_PROVIDER_ERROR"), ready(0, "tok-2")}, 2, 0},
		{"the last tells another token", solved, []delivery{ready(1, "tok-1")}, 1, 1},
		{"dead, told", dead, []delivery{failed(1, "UNKNOWN_PROVIDER_ERROR"), failed(1, "UNKNOWN_PROVIDER_ERROR")}, 1, 0},
		{"two deliveries of one outcome disagree", dead, []delivery{ready(1, "tok-1"), failed(1, "UNKNOWN_PROVIDER_ERROR")}, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			problems := callbackProblems(tt.out, tt.ds, tt.outcomes)
			require.Len(t, problems, tt.problems, "%v", problems)
		})
	}
}

func TestConsistent(t *testing.T) {
	t.Parallel()
	calls := jobCalls{
		creates: []call{{Code: "SERVICE_UNAVAILABLE"}, {TaskID: "a"}},
		polls:   []call{{TaskID: "a", Status: "ready", Token: "tok-a"}},
	}
	errOut := func(state enqueue.State, code string) enqueue.Outcome {
		return enqueue.Outcome{State: state, Error: &enqueue.ErrorInfo{ErrorCode: code}}
	}
	tests := []struct {
		name     string
		out      enqueue.Outcome
		redrives int
		ok       bool
	}{
		{"solved with the fake's token", enqueue.Outcome{State: enqueue.StateSolved, Solution: json.RawMessage(`{"token":"tok-a"}`)}, 0, true},
		{"solved with a token never given", enqueue.Outcome{State: enqueue.StateSolved, Solution: json.RawMessage(`{"token":"tok-z"}`)}, 0, false},
		{"dead with a code the fake answered", errOut(enqueue.StateDead, "SERVICE_UNAVAILABLE"), 0, true},
		{"failed with a code the fake never answered", errOut(enqueue.StateFailed, "DOMAIN_BANNED"), 0, false},
		{"expired before any attempt", errOut(enqueue.StateFailed, "JOB_EXPIRED"), 0, true},
		{"expired after a redrive", errOut(enqueue.StateFailed, "JOB_EXPIRED"), 1, false},
		{"held by the budget past its deadline", errOut(enqueue.StateDead, "BUDGET_SPENT"), 0, true},
		{"failed by the budget", errOut(enqueue.StateFailed, "BUDGET_SPENT"), 0, false},
		{"dead without an error", enqueue.Outcome{State: enqueue.StateDead}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg := consistent(tt.out, calls, tt.redrives)
			require.Equal(t, tt.ok, msg == "", msg)
		})
	}
}
