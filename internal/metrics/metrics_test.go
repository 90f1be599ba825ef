package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/policyfile"
)

func TestMetricsObserver(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)

	m.JobEnded(JobEnd{Queue: "default", TaskType: "RecaptchaV2TaskProxyless", State: enqueue.StateSolved,
		Attempts: 1, CreateTasks: 1, Polls: 4, Cost: 0.002, SolveTime: 12 * time.Second, EndToEnd: 13 * time.Second})
	m.JobEnded(JobEnd{Queue: "default", TaskType: "RecaptchaV2TaskProxyless", State: enqueue.StateSolved,
		Attempts: 2, CreateTasks: 2, Polls: 9, Cost: 0.003, SolveTime: 20 * time.Second, EndToEnd: 40 * time.Second})
	m.JobEnded(JobEnd{Queue: "default", TaskType: "ImageToTextTask", State: enqueue.StateFailed,
		Code: "ERROR_ZERO_BALANCE", Attempts: 1, CreateTasks: 1, EndToEnd: time.Second})
	m.JobEnded(JobEnd{Queue: "low", TaskType: "x", State: enqueue.StateDead,
		Code: "weird code: see https://example.com/?key=abc", EndToEnd: time.Minute})
	m.JobEnded(JobEnd{Queue: "low", State: enqueue.StateDead, Code: strings.Repeat("A", 65)})
	m.JobEnded(JobEnd{Queue: "low", State: enqueue.StateDead, Code: "A_CODE_THE_PROVIDER_INVENTED"})

	m.Called("createTask", "ok", 300*time.Millisecond)
	m.Called("getTaskResult", "timeout", 30*time.Second)
	m.Called("getTaskResult", "CAPTCHA_UNSOLVABLE", time.Second)
	m.Called("getTaskResult", "lower_case_code", time.Second)
	m.Called("https://api.anysolver.com/x", "ok", time.Second)

	m.AttemptRescheduled("retry", "CAPTCHA_UNSOLVABLE")
	m.AttemptRescheduled("retry", "CAPTCHA_UNSOLVABLE")
	m.AttemptRescheduled("throttle", "RATE_LIMITED")
	m.AttemptRescheduled("throttle", "Rate limited, try later")

	m.BreakerChanged(true, "ERROR_ZERO_BALANCE")

	for _, tt := range []struct {
		c    prometheus.Collector
		want float64
	}{
		{m.jobsEnded.WithLabelValues("default", "solved", ""), 2},
		{m.jobsEnded.WithLabelValues("default", "failed", "ERROR_ZERO_BALANCE"), 1},
		{m.jobsEnded.WithLabelValues("low", "dead", "other"), 3},
		{m.calls.WithLabelValues("createTask", "ok"), 1},
		{m.calls.WithLabelValues("getTaskResult", "timeout"), 1},
		{m.calls.WithLabelValues("getTaskResult", "CAPTCHA_UNSOLVABLE"), 1},
		{m.calls.WithLabelValues("getTaskResult", "other"), 1},
		{m.calls.WithLabelValues("other", "ok"), 1},
		{m.rescheduled.WithLabelValues("retry", "CAPTCHA_UNSOLVABLE"), 2},
		{m.rescheduled.WithLabelValues("throttle", "RATE_LIMITED"), 1},
		{m.rescheduled.WithLabelValues("throttle", "other"), 1},
		{m.breakerOpen, 1},
	} {
		require.Equal(t, tt.want, testutil.ToFloat64(tt.c))
	}
	require.InDelta(t, 0.005, testutil.ToFloat64(m.cost), 1e-12)

	// Series counts: nothing else was created, solve time only for solved jobs.
	require.Equal(t, 3, testutil.CollectAndCount(m.jobsEnded))
	require.Equal(t, 1, testutil.CollectAndCount(m.solveSecs))
	require.Equal(t, 3, testutil.CollectAndCount(m.jobSecs))

	families, err := reg.Gather()
	require.NoError(t, err)
	byName := map[string]int{}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			if h := metric.GetHistogram(); h != nil {
				byName[f.GetName()] += int(h.GetSampleCount())
			}
			for _, l := range metric.GetLabel() {
				require.NotContains(t, l.GetValue(), "example.com", "label %s of %s", l.GetName(), f.GetName())
			}
		}
	}
	require.Equal(t, 6, byName["solvequeue_polls_per_job"])
	require.Equal(t, 6, byName["solvequeue_create_tasks_per_job"])
	require.Equal(t, 2, byName["solvequeue_solve_seconds"])
	require.Equal(t, 4, byName["solvequeue_job_seconds"]) // the jobs with no EndToEnd are not observed
	require.Equal(t, 5, byName["solvequeue_anysolver_call_seconds"])

	m.BreakerChanged(false, "ERROR_ZERO_BALANCE")
	require.Equal(t, 0.0, testutil.ToFloat64(m.breakerOpen))

	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

func TestMetricsCodeLabel(t *testing.T) {
	t.Parallel()
	policy, err := policyfile.Parse("policy.yaml", []byte("codes:\n  MY_NEW_CODE: {decision: retry, custom: true}\n"))
	require.NoError(t, err)
	m := NewMetricsFor(prometheus.NewRegistry(), policy.Classification())
	for _, tt := range []struct{ in, want string }{
		{"CAPTCHA_UNSOLVABLE", "CAPTCHA_UNSOLVABLE"}, // a seed code
		{"HTTP_5XX", "HTTP_5XX"},                     // a transport code
		{"JOB_EXPIRED", "JOB_EXPIRED"},               // the worker's own
		{"INVALID_PAYLOAD", "INVALID_PAYLOAD"},
		{"MY_NEW_CODE", "MY_NEW_CODE"}, // one the policy file adds
		{"BRAND_NEW_PROVIDER_CODE", "other"},
		{strings.Repeat("A", 65), "other"},
		{"", "other"},
		{"_LEADING", "other"},
		{"lower", "other"},
		{"SPACE IN", "other"},
		{"ÜNICODE", "other"},
	} {
		require.Equal(t, tt.want, m.codeLabel(tt.in), "codeLabel(%q)", tt.in)
	}
	require.Equal(t, "other", NewMetrics(prometheus.NewRegistry()).codeLabel("MY_NEW_CODE"), "the default policy does not know it")
	for _, r := range classify.Default().Rules() {
		require.Equal(t, r.ErrorCode, m.codeLabel(r.ErrorCode), "every code of the table is its own label")
	}
	require.Equal(t, "connection", m.outcomeLabel("connection"))
	require.Equal(t, "canceled", m.outcomeLabel("canceled"))
	require.Equal(t, "other", m.outcomeLabel("refused"))
	require.Equal(t, "other", m.outcomeLabel("NOT_A_KNOWN_CODE"))
	require.Equal(t, "other", TaskTypeLabel("a b"))
	require.Equal(t, "ReCaptchaV2Token", TaskTypeLabel("ReCaptchaV2Token"))
}

func TestMetricsDeadLetterCollector(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rc.Close() })

	c := NewDeadLetterCollector(rc)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)

	const want = `
# HELP solvequeue_breaker_open ` + breakerOpenHelp + `
# TYPE solvequeue_breaker_open gauge
solvequeue_breaker_open %d
# HELP solvequeue_dead_letters ` + deadLettersHelp + `
# TYPE solvequeue_dead_letters gauge
solvequeue_dead_letters %d
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(want, 0, 0))))

	// Dead letters of two queues: one a worker registered, one asynq knows.
	_, err := mr.SAdd(keys.Queues, "default")
	require.NoError(t, err)
	_, err = mr.SAdd("asynq:queues", "low")
	require.NoError(t, err)
	mr.HSet(keys.DeadLetters("default"), "default/a", "{}")
	mr.HSet(keys.DeadLetters("low"), "low/b", "{}")
	require.NoError(t, mr.Set(keys.Breaker, `{"open":true,"code":"ERROR_ZERO_BALANCE"}`))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(want, 1, 2))))

	// Redis gone: nothing is emitted rather than a misleading zero.
	mr.Close()
	require.Equal(t, 0, testutil.CollectAndCount(c))
}

// TestMetricsBreakerNameShared shows why package monitor keeps the dead-letter collector in a
// registry of its own: it cannot share one with Metrics (both name solvequeue_breaker_open).
func TestMetricsBreakerNameShared(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	NewMetrics(reg)
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialed
	t.Cleanup(func() { _ = rc.Close() })
	require.Error(t, reg.Register(NewDeadLetterCollector(rc)))
}

func BenchmarkMetricsJobEnded(b *testing.B) {
	m := NewMetrics(prometheus.NewRegistry())
	e := JobEnd{Queue: "default", TaskType: "RecaptchaV2TaskProxyless", State: enqueue.StateSolved,
		Attempts: 1, CreateTasks: 1, Polls: 5, Cost: 0.002, SolveTime: 12 * time.Second, EndToEnd: 14 * time.Second}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.JobEnded(e)
		}
	})
}

// TestMetricsProviderLabels: providers that jobs invent fill the provider label's bound and then
// count as "other", but a provider the operator names keeps its own label whenever it first
// shows, and one already seen keeps its own; a name that is not UTF-8 never panics.
func TestMetricsProviderLabels(t *testing.T) {
	t.Parallel()
	m := NewMetrics(prometheus.NewRegistry())
	m.NameProviders([]string{"CapSolver", "CapMonster"})
	m.ProviderResult("EarlyBird", "", time.Second)
	for i := range 2 * maxProviderLabels {
		m.ProviderResult(fmt.Sprintf("Invented%d", i), "PROVIDER_UNREACHABLE", 0)
	}
	m.ProviderResult("CapSolver", "", time.Second)
	m.ProviderResult("CapMonster", "PROVIDER_UNREACHABLE", 0)
	m.ProviderResult("EarlyBird", "", time.Second)
	m.ProviderResult("a\xffb", "", 0)
	require.Equal(t, 1.0, testutil.ToFloat64(m.money.providerResults.WithLabelValues("CapSolver", "ok")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.money.providerResults.WithLabelValues("CapMonster", "PROVIDER_UNREACHABLE")))
	require.Equal(t, 2.0, testutil.ToFloat64(m.money.providerResults.WithLabelValues("EarlyBird", "ok")))
	require.Equal(t, float64(maxProviderLabels+1), testutil.ToFloat64(m.money.providerResults.WithLabelValues(LabelOther, "PROVIDER_UNREACHABLE")),
		"the inventions past the bound, less EarlyBird's place")
	require.Equal(t, 1.0, testutil.ToFloat64(m.money.providerResults.WithLabelValues(LabelOther, "ok")), "the name that is not UTF-8")
	require.Equal(t, maxProviderLabels+2+1+1, testutil.CollectAndCount(m.money.providerResults), "bounded series")
}
