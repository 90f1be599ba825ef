// Package demo is `solvequeue demo`: the whole pipeline in one process (a Redis, the fake
// AnySolver with a mix of errors, a worker and a producer), its live progress and its summary.
// The command's flags and the wiring of its output streams are the binary's; the run is here.
package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/rig"
	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/words"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/internal/redact"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
	"github.com/solvequeue/solvequeue/worker/monitor"
)

// Options configure a demo run.
type Options struct {
	// RedisURL is a Redis to run on; "" runs on an in-process one (miniredis).
	RedisURL string
	// Jobs is how many jobs go to the queue with the error mix; at least 1.
	Jobs int
	// HTTPAddr, when set, serves the console, the web UI and metrics while the demo runs.
	HTTPAddr string
	// Hold, with HTTPAddr, keeps serving this long after the summary.
	Hold time.Duration
	// Logger receives the worker's logs.
	Logger *slog.Logger
	// Stdout receives the progress and the summary.
	Stdout io.Writer
	// Terminal says Stdout is a terminal: the progress then rewrites one line, more often.
	Terminal bool
	// Name is the command the way the user ran it, for the summary's hints ("go run ./cmd/solvequeue").
	Name string
}

// demoMix is the error mix of the demo: per hundred jobs, what the fake does with them.
// Each entry is a websiteKey directive (see 'solvequeue fake-anysolver --help').
var demoMix = []struct {
	per100    int
	directive string
	story     string
}{
	{62, "", "solved at once"},
	{4, demoFailover, "FlakyCo unreachable: failed over to SteadyCo at once, solved"},
	{8, "sq:create=SERVICE_UNAVAILABLE*1", "SERVICE_UNAVAILABLE once, retried, solved"},
	{4, "sq:create=INTERNAL_ERROR*1", "INTERNAL_ERROR once, retried, solved"},
	{4, "sq:failed=CAPTCHA_UNSOLVABLE*1", "CAPTCHA_UNSOLVABLE on poll, re-created, solved"},
	{5, "sq:create=RATE_LIMITED*1", "RATE_LIMITED once, throttled, solved"},
	{3, "sq:http=html502*1", "an HTML 502 page once, retried, solved"},
	{4, "sq:create=DOMAIN_BANNED*9", "DOMAIN_BANNED: failed, never retried"},
	{3, "sq:create=INVALID_SITEKEY*9", "INVALID_SITEKEY: failed, never retried"},
	{3, "sq:create=UNKNOWN_PROVIDER_ERROR*9", "UNKNOWN_PROVIDER_ERROR: dead letter"},
}

// The demo's money stories. demoFailover marks jobs that name two providers, FlakyCo (down) and
// SteadyCo; the demo-capped queue has a budget of demoCap createTask calls per demoWindow, and
// demoCappedJobs jobs go to it, so some are held until the window rolls.
const (
	demoFailover   = "failover"
	demoCapped     = "demo-capped"
	demoCap        = 10
	demoWindow     = 10 * time.Second
	demoCappedJobs = 15
	demoFlaky      = "FlakyCo"
	demoSteady     = "SteadyCo"
)

// demoPolicy is the demo worker's policy: the defaults, and a budget on the capped queue.
func demoPolicy() (*policyfile.Policy, error) {
	return policyfile.Parse("demo-policy.yaml", []byte(fmt.Sprintf(
		"queues:\n  %s:\n    budget: {window: %s, maxCreateTasks: %d}\n", demoCapped, demoWindow, demoCap)))
}

func demoJob(i int) enqueue.Job {
	// Stride through the hundred slots (37 is coprime with 100): every hundred jobs still follow
	// the mix exactly, and a short run (--jobs 30) meets every story instead of only the first.
	slot := i * 37 % 100
	directive := ""
	for _, m := range demoMix {
		if slot < m.per100 {
			directive = m.directive
			break
		}
		slot -= m.per100
	}
	key := fmt.Sprintf("demo-site-key-%d", i)
	var providers []string
	switch directive {
	case "":
	case demoFailover:
		providers = []string{demoFlaky, demoSteady}
	default:
		key = directive + ";id=" + fmt.Sprint(i)
	}
	return enqueue.Job{ID: fmt.Sprintf("demo-%d-%d", time.Now().Unix(), i), Queue: "demo", Providers: providers,
		Task: map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://demo.example/login", "websiteKey": key}}
}

// demoCappedJob is one of the jobs sent to the queue with a budget.
func demoCappedJob(i int) enqueue.Job {
	return enqueue.Job{ID: fmt.Sprintf("demo-capped-%d-%d", time.Now().Unix(), i), Queue: demoCapped,
		Task: map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://demo.example/login",
			"websiteKey": fmt.Sprintf("demo-capped-key-%d", i)}}
}

// Run runs the demo: it submits the jobs, prints progress while they run and a summary when
// every one has ended.
func Run(ctx context.Context, o Options) error {
	started := time.Now()
	log := o.Logger
	// The first line comes before anything slow: starting Redis, the fake and the worker.
	where := "an in-process Redis (miniredis)"
	if o.RedisURL != "" {
		where = "Redis at " + redact.URL(o.RedisURL)
	}
	fmt.Fprintf(o.Stdout, "solvequeue demo: starting %s, the fake AnySolver and a worker…\n", where)
	r, err := rig.OpenRedis(ctx, rig.RedisOptions{URL: o.RedisURL, Embedded: rig.MiniRedis, PoolSize: 64})
	if err != nil {
		return err
	}
	defer r.Close()

	reg := prometheus.NewRegistry()
	policy, err := demoPolicy()
	if err != nil {
		return err
	}
	solveAll := anysolvertest.DirectiveScript(func(t anysolvertest.Task) anysolvertest.Behavior {
		b := anysolvertest.DefaultBehavior(t)
		b.SolveTime = time.Duration(1000+len(t.Key)%7*250) * time.Millisecond
		return b
	})
	p, err := rig.New(ctx, r, rig.Options{
		Fake: anysolvertest.Options{Script: func(t anysolvertest.Task) anysolvertest.Behavior {
			if t.Provider == demoFlaky {
				return anysolvertest.Behavior{CreateError: "PROVIDER_UNREACHABLE"}
			}
			return solveAll(t)
		}},
		APIKey: "demo-key",
		Worker: worker.Config{Queues: map[string]int{"demo": 1, demoCapped: 1}, Policy: policy,
			Observer: worker.NewMetricsFor(reg, policy.Classification()), Logger: log, ShutdownTimeout: time.Second},
	})
	if err != nil {
		return err
	}
	defer p.Close()
	if o.HTTPAddr != "" {
		addr, stop, err := monitor.ListenAndServe(ctx, monitor.Config{Addr: o.HTTPAddr, Redis: r.Client, Registry: reg, Policy: policy, Logger: log,
			Ready: func(ctx context.Context) (any, error) { return p.Worker.Ready(ctx) }})
		if err != nil {
			return err
		}
		defer func() { _ = stop(context.Background()) }()
		fmt.Fprintf(o.Stdout, "web UI: http://%s/monitoring/   console: http://%s/console/   metrics: http://%s/metrics\n", addr, addr, addr)
	}
	if err := p.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(o.Stdout, "solvequeue demo: %d captcha jobs → %s → worker → fake AnySolver (%s)\n", o.Jobs+demoCappedJobs, r.Where, p.Fake.URL)
	fmt.Fprintf(o.Stdout, "  %d on queue demo with a mix of AnySolver errors; %d on queue %s, whose budget allows %d createTask calls per %s\n",
		o.Jobs, demoCappedJobs, demoCapped, demoCap, demoWindow)
	jobs := make([]enqueue.Job, 0, o.Jobs+demoCappedJobs)
	for i := range o.Jobs {
		jobs = append(jobs, demoJob(i))
	}
	for i := range demoCappedJobs {
		jobs = append(jobs, demoCappedJob(i))
	}
	results, err := p.Producer.SubmitMany(ctx, jobs, 32, nil)
	if err != nil {
		return err
	}
	refs := make([]enqueue.JobRef, 0, len(results))
	for _, res := range results {
		if res.Err != nil {
			return res.Err
		}
		refs = append(refs, enqueue.JobRef{ID: res.Submitted.ID, Queue: res.Submitted.Queue})
	}
	fmt.Fprintf(o.Stdout, "submitted %d jobs in %s\n", len(refs), time.Since(started).Round(time.Millisecond))

	var (
		mu       sync.Mutex
		outcomes []enqueue.Outcome
	)
	progressDone, progressStopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(progressStopped)
		demoProgress(o.Stdout, o.Terminal, progressDone, len(refs), time.Now, func() []enqueue.Outcome {
			mu.Lock()
			defer mu.Unlock()
			return append([]enqueue.Outcome(nil), outcomes...)
		})
	}()
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err = p.Producer.WaitMany(waitCtx, refs, 16, func(_ enqueue.JobRef, out enqueue.Outcome, err error) {
		if err != nil {
			out.State = "unknown"
		}
		mu.Lock()
		outcomes = append(outcomes, out)
		mu.Unlock()
	})
	close(progressDone)
	<-progressStopped // no progress line may land inside the summary
	if err != nil {
		return fmt.Errorf("demo: waiting for outcomes: %w", err)
	}
	printDemoSummary(o.Stdout, o.Name, outcomes, p.Fake.Stats(), time.Since(started))
	if o.HTTPAddr != "" && o.Hold > 0 {
		fmt.Fprintf(o.Stdout, "serving the web UI for %s more (Ctrl-C to stop)\n", o.Hold)
		select {
		case <-ctx.Done():
		case <-time.After(o.Hold):
		}
	}
	return nil
}

// demoHeartbeat is how long the progress stays silent while nothing ends: then it says what it
// waits for, once per demoHeartbeat.
const demoHeartbeat = 15 * time.Second

func demoProgress(w io.Writer, tty bool, done <-chan struct{}, total int, now func() time.Time, snapshot func() []enqueue.Outcome) {
	every := 2 * time.Second
	if tty {
		every = 250 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var p progressPrinter
	for {
		select {
		case <-done:
			if tty {
				fmt.Fprint(w, "\r\033[K")
			}
			return
		case <-t.C:
		}
		line, ok := p.next(progressLine(total, snapshot()), now())
		if !ok {
			continue
		}
		if tty {
			fmt.Fprint(w, "\r\033[K"+line)
		} else {
			fmt.Fprintln(w, line)
		}
	}
}

// progressLine counts the ended jobs by state.
func progressLine(total int, outcomes []enqueue.Outcome) string {
	counts := map[enqueue.State]int{}
	for _, o := range outcomes {
		counts[o.State]++
	}
	ended := counts[enqueue.StateSolved] + counts[enqueue.StateFailed] + counts[enqueue.StateDead]
	return fmt.Sprintf("%d/%d ended · solved %d · failed %d · dead %d", ended, total,
		counts[enqueue.StateSolved], counts[enqueue.StateFailed], counts[enqueue.StateDead])
}

// progressPrinter decides which progress lines are printed: a line that changed, and while
// none changes, one heartbeat per demoHeartbeat that says what the demo waits for. An
// unchanged line is never printed twice in a row.
type progressPrinter struct {
	last      string
	lastShown time.Time
}

// next returns what to print for the current line at now, and whether to print at all.
func (p *progressPrinter) next(line string, now time.Time) (string, bool) {
	if line != p.last {
		p.last, p.lastShown = line, now
		return line, true
	}
	if now.Sub(p.lastShown) < demoHeartbeat {
		return "", false
	}
	p.lastShown = now
	return line + " · still waiting for the rest: retries, throttles and the capped queue's budget window take a while", true
}

func printDemoSummary(w io.Writer, name string, outcomes []enqueue.Outcome, stats anysolvertest.Stats, took time.Duration) {
	byState := map[enqueue.State]int{}
	byCode := map[string]int{}
	retries, throttles, creates, polls := 0, 0, 0, 0
	for _, o := range outcomes {
		byState[o.State]++
		if o.Error != nil {
			byCode[fmt.Sprintf("%s → %s", o.Error.ErrorCode, o.State)]++
		}
		retries += o.Retries
		throttles += o.Throttles
		creates += o.CreateTasks
		polls += o.Polls
	}
	n := max(len(outcomes), 1)
	fmt.Fprintf(w, "\nall %d jobs ended in %s\n\n", len(outcomes), took.Round(100*time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tJOBS")
	for _, s := range []enqueue.State{enqueue.StateSolved, enqueue.StateFailed, enqueue.StateDead} {
		fmt.Fprintf(tw, "%s\t%d\n", s, byState[s])
	}
	_ = tw.Flush()
	if len(byCode) > 0 {
		fmt.Fprintln(w, "\nfailed and dead jobs by AnySolver error code:")
		codes := make([]string, 0, len(byCode))
		for c := range byCode {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		for _, c := range codes {
			fmt.Fprintf(w, "  %-40s %d\n", c, byCode[c])
		}
	}
	fmt.Fprintf(w, "\nretries %d · throttles %d · createTask calls %d (%.2f per job) · polls %d (%.2f per job)\n",
		retries, throttles, creates, float64(creates)/float64(n), polls, float64(polls)/float64(n))
	writeCharges(w, stats)
	writeMoneyStories(w, outcomes)
	writeDemoNext(w, name)
}

// writeDemoNext prints the commands to try next, named the way the user ran this one.
func writeDemoNext(w io.Writer, name string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nnext:")
	fmt.Fprintf(tw, "  %s policy\twhat each AnySolver error code leads to\n", name)
	fmt.Fprintf(tw, "  %s demo --http 127.0.0.1:8080 --hold 5m\tthe same run with the console, the web UI and /metrics\n", name)
	fmt.Fprintf(tw, "  %s worker --help\trun it for real (Redis + ANYSOLVER_API_KEY)\n", name)
	_ = tw.Flush()
}

// writeMoneyStories tells what the budget and the failover did in the run.
func writeMoneyStories(w io.Writer, outcomes []enqueue.Outcome) {
	var capped, waited, cappedSolved, cappedRetries, failedOver, skipped, failoverSolved int
	var first time.Time
	for _, o := range outcomes {
		if o.Queue == demoCapped && (first.IsZero() || o.SubmittedAt.Before(first)) {
			first = o.SubmittedAt
		}
	}
	for _, o := range outcomes {
		if o.Queue == demoCapped {
			capped++
			// No more than demoCap createTask calls fit in the window that opened with the
			// first; a job ending a window after the first submission waited for it to roll.
			if o.FinishedAt.Sub(first) >= demoWindow {
				waited++
			}
			if o.State == enqueue.StateSolved {
				cappedSolved++
			}
			cappedRetries += o.Retries
		}
		if slices.Contains(o.ProvidersTried, demoSteady) {
			if o.ProvidersTried[0] == demoFlaky {
				failedOver++
			} else {
				skipped++
			}
			if o.State == enqueue.StateSolved && o.Provider == demoSteady {
				failoverSolved++
			}
		}
	}
	fmt.Fprintln(w)
	if capped > 0 {
		fmt.Fprintf(w, "budget: queue %s may make %d createTask calls per %s: %d of its %d jobs waited for the window to roll (held with BUDGET_SPENT, or kept in the paused queue: not paid, not failed); %d retries spent; %d solved\n",
			demoCapped, demoCap, demoWindow, waited, capped, cappedRetries, cappedSolved)
	}
	if failedOver+skipped > 0 {
		fmt.Fprintf(w, "failover: %d jobs named [%s, %s], which is down: %d met its PROVIDER_UNREACHABLE and went at once to %s (no retry spent); %d skipped it, its breaker open after 5 errors in a row; %d solved by %s\n",
			failedOver+skipped, demoFlaky, demoSteady, failedOver, demoSteady, skipped, failoverSolved, demoSteady)
	}
}

// writeCharges explains the fake's createTask calls against what was charged: AnySolver charges
// for a task it creates, not for a call it refuses with an error, and a task that fails while
// being solved (CAPTCHA_UNSOLVABLE) was charged and its job pays for a new one.
func writeCharges(w io.Writer, st anysolvertest.Stats) {
	fmt.Fprintf(w, "the fake AnySolver saw %s; only a call that creates a task is charged:\n", words.Plural(st.CreateTask, "createTask call"))
	fmt.Fprintf(w, "  %d created a task, charged $%.3f in all", st.Created, st.Charged)
	if st.Failed > 0 {
		fmt.Fprintf(w, " (%d of those tasks failed while being solved, e.g. CAPTCHA_UNSOLVABLE, and their jobs paid for a new one)", st.Failed)
	}
	fmt.Fprintln(w)
	if refused := st.CreateTask - st.Created; refused > 0 {
		fmt.Fprintf(w, "  %d were refused with an error code or an error page and created nothing: not charged\n", refused)
	}
}
