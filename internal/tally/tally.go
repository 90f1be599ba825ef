package tally

import (
	"context"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/failedindex"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/loop"
	"github.com/solvequeue/solvequeue/internal/metrics"
)

// The tally is what the web console's overview reads about jobs that ended: Prometheus counters
// live in each worker's memory, and reading asynq's completed tasks back would mean reading every
// job of the day. Each worker adds up, per queue and minute, the jobs that ended by state and
// code with their createTask calls and cost, and per provider and minute the createTask results;
// it writes the sums to Redis every FlushInterval (and as it stops), under each queue's hash
// tag, kept for Keep. A worker killed outright loses at most the last interval's counts:
// the tally is for people to look at, never for deciding anything. Failed jobs also go into their
// queue's failed index (enqueue.FailedKey), which the console lists them from.

// Settings of the tally.
const (
	// FlushInterval is how often a worker writes its sums to Redis.
	FlushInterval = 2 * time.Second
	// Keep is how long an hour of tally stays in Redis: a day, and some margin.
	Keep = 26 * time.Hour
	// tallyFieldMax bounds the fields a worker holds between two writes, whatever a misbehaving
	// provider sends (codes and provider names are bounded too).
	tallyFieldMax = 10_000
)

// flushTimeout bounds one write of the sums.
const flushTimeout = 10 * time.Second

// providerOK is the code of a provider's solved task in the tally.
const providerOK = "ok"

// Params configure a Tally.
type Params struct {
	Redis    redis.UniversalClient
	Codes    map[string]bool // the codes counted by name; any other is metrics.LabelOther
	Interval time.Duration   // how often the sums are written; defaults to FlushInterval
	Log      *slog.Logger
	Now      func() time.Time
}

// Tally implements the Observer methods that feed it and writes their sums to Redis.
type Tally struct {
	metrics.NopObserver
	Params
	mu      sync.Mutex
	sums    map[string]map[string]int64 // Redis key -> field -> amount
	fields  int
	failed  map[string][]redis.Z // queue -> failed index entries
	flusher *loop.Loop
	stopped sync.Once
}

// New returns a Tally; Start runs its flush.
func New(p Params) *Tally {
	if p.Interval <= 0 {
		p.Interval = FlushInterval
	}
	return &Tally{Params: p, sums: map[string]map[string]int64{}, failed: map[string][]redis.Z{}}
}

// JobEnded counts a job's end, and indexes a failed one.
func (t *Tally) JobEnded(e metrics.JobEnd) {
	now := t.Now()
	minute := now.Unix() / 60
	key := keys.Tally(e.Queue, minute/60)
	m := strconv.FormatInt(minute, 10) + "|"
	code := ""
	if e.Code != "" {
		code = t.code(e.Code)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.add(key, m+metrics.StateLabel(e.State)+"|"+code, 1)
	t.add(key, m+"createTasks", int64(e.CreateTasks))
	t.add(key, m+"cost", int64(math.Round(e.Cost*1e6)))
	if e.State == enqueue.StateFailed && e.ID != "" && len(t.failed[e.Queue]) < tallyFieldMax {
		t.failed[e.Queue] = append(t.failed[e.Queue], redis.Z{Score: float64(now.UnixMilli()), Member: failedindex.Member(e.Code, e.ID)})
	}
}

// ProviderResult counts a createTask's result at a provider.
func (t *Tally) ProviderResult(provider, code string, _ time.Duration) {
	minute := t.Now().Unix() / 60
	if code == "" {
		code = providerOK
	} else {
		code = t.code(code)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.add(keys.ProviderTally(minute/60), strconv.FormatInt(minute, 10)+"|"+code+"|"+providerLabel(provider), 1)
}

func (t *Tally) code(code string) string {
	if t.Codes[code] {
		return code
	}
	return metrics.LabelOther
}

// providerLabel passes a provider name as taskTypeLabel passes a task type.
func providerLabel(p string) string { return metrics.TaskTypeLabel(p) }

// add adds n to a field; the caller holds mu.
func (t *Tally) add(key, field string, n int64) {
	if n == 0 {
		return
	}
	fields := t.sums[key]
	if fields == nil {
		fields = map[string]int64{}
		t.sums[key] = fields
	}
	if _, ok := fields[field]; !ok {
		if t.fields >= tallyFieldMax {
			return
		}
		t.fields++
	}
	fields[field] += n
}

// Start writes the sums every Interval until Shutdown.
func (t *Tally) Start(ctx context.Context) {
	t.flusher = loop.Every(ctx, t.Interval, false, t.flush)
}

// Shutdown stops the loop and writes what is left.
func (t *Tally) Shutdown(ctx context.Context) {
	t.stopped.Do(func() {
		t.flusher.Stop()
		t.flush(context.WithoutCancel(ctx))
	})
}

// flush writes the sums gathered since the last flush in one pipeline; if Redis does not take
// them they are kept for the next flush.
func (t *Tally) flush(ctx context.Context) {
	t.mu.Lock()
	sums, failed := t.sums, t.failed
	t.sums, t.failed, t.fields = map[string]map[string]int64{}, map[string][]redis.Z{}, 0
	t.mu.Unlock()
	if len(sums) == 0 && len(failed) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	oldest := float64(t.Now().Add(-failedindex.Age).UnixMilli())
	_, err := t.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for key, fields := range sums {
			for f, n := range fields {
				p.HIncrBy(ctx, key, f, n)
			}
			p.Expire(ctx, key, Keep)
		}
		for queue, zs := range failed {
			key := keys.Failed(queue)
			p.ZAdd(ctx, key, zs...)
			p.ZRemRangeByScore(ctx, key, "-inf", "("+strconv.FormatFloat(oldest, 'f', 0, 64))
			p.ZRemRangeByRank(ctx, key, 0, -failedindex.Max-1)
		}
		return nil
	})
	if err == nil {
		return
	}
	t.Log.Debug("could not write the job tally; keeping it for the next try", "err", err)
	t.mu.Lock()
	defer t.mu.Unlock()
	for key, fields := range sums {
		for f, n := range fields {
			t.add(key, f, n)
		}
	}
	for q, zs := range failed {
		if len(t.failed[q]) < tallyFieldMax {
			t.failed[q] = append(t.failed[q], zs...)
		}
	}
}

// Ended is what a tally says about one window of time: the jobs that ended in each queue and
// the createTask results of each provider.
type Ended struct {
	Window    time.Duration
	Queues    map[string]*QueueEnded
	Providers map[string]*ProviderEnded
}

// QueueEnded is one queue's ended jobs in a window.
type QueueEnded struct {
	Jobs        int64
	ByState     map[enqueue.State]int64
	ByCode      []CodeCount // failed and dead jobs by state and code, most first
	CreateTasks int64
	Cost        float64
}

// CodeCount is how many jobs ended in a state with a code.
type CodeCount struct {
	State enqueue.State
	Code  string
	Jobs  int64
}

// ProviderEnded is one provider's createTask results in a window.
type ProviderEnded struct {
	Solved int64
	Errors map[string]int64
}

// Tasks is the provider's createTask results with an outcome.
func (p *ProviderEnded) Tasks() int64 {
	n := p.Solved
	for _, e := range p.Errors {
		n += e
	}
	return n
}

// ErrorRate is the share of the provider's results that were errors (0 without results).
func (p *ProviderEnded) ErrorRate() float64 {
	n := p.Tasks()
	if n == 0 {
		return 0
	}
	return float64(n-p.Solved) / float64(n)
}

// Read sums the tally of the given queues and of the providers over each window ending at
// now (to the minute; at most Keep), reading every hour the longest window needs once.
func Read(ctx context.Context, rc redis.UniversalClient, queues []string, now time.Time, windows ...time.Duration) ([]Ended, error) {
	longest := time.Duration(0)
	for _, w := range windows {
		longest = max(longest, min(w, Keep))
	}
	nowMin := now.Unix() / 60
	firstMin := nowMin - int64(longest/time.Minute) + 1
	var hourKeys []string
	var owner []string // queue of each key; "" for a provider key
	for h := firstMin / 60; h <= nowMin/60; h++ {
		for _, q := range queues {
			hourKeys, owner = append(hourKeys, keys.Tally(q, h)), append(owner, q)
		}
		hourKeys, owner = append(hourKeys, keys.ProviderTally(h)), append(owner, "")
	}
	cmds := make([]*redis.MapStringStringCmd, len(hourKeys))
	_, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range hourKeys {
			cmds[i] = p.HGetAll(ctx, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Ended, len(windows))
	for i, w := range windows {
		out[i] = Ended{Window: w, Queues: map[string]*QueueEnded{}, Providers: map[string]*ProviderEnded{}}
		for _, q := range queues {
			out[i].Queues[q] = &QueueEnded{ByState: map[enqueue.State]int64{}}
		}
	}
	for k, cmd := range cmds {
		for field, v := range cmd.Val() {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue
			}
			minStr, rest, ok := strings.Cut(field, "|")
			minute, perr := strconv.ParseInt(minStr, 10, 64)
			if !ok || perr != nil || minute > nowMin {
				continue
			}
			for i, w := range windows {
				if minute < nowMin-int64(min(w, Keep)/time.Minute)+1 {
					continue
				}
				if owner[k] == "" {
					addProvider(out[i].Providers, rest, n)
				} else {
					addQueue(out[i].Queues[owner[k]], rest, n)
				}
			}
		}
	}
	for _, e := range out {
		for _, q := range e.Queues {
			sort.Slice(q.ByCode, func(a, b int) bool {
				x, y := q.ByCode[a], q.ByCode[b]
				if x.Jobs != y.Jobs {
					return x.Jobs > y.Jobs
				}
				if x.State != y.State {
					return x.State < y.State
				}
				return x.Code < y.Code
			})
		}
	}
	return out, nil
}

func addQueue(q *QueueEnded, field string, n int64) {
	switch field {
	case "createTasks":
		q.CreateTasks += n
		return
	case "cost":
		q.Cost += float64(n) / 1e6
		return
	}
	state, code, ok := strings.Cut(field, "|")
	if !ok {
		return
	}
	s := enqueue.State(state)
	q.Jobs += n
	q.ByState[s] += n
	if code == "" {
		return
	}
	for i := range q.ByCode {
		if q.ByCode[i].State == s && q.ByCode[i].Code == code {
			q.ByCode[i].Jobs += n
			return
		}
	}
	q.ByCode = append(q.ByCode, CodeCount{State: s, Code: code, Jobs: n})
}

func addProvider(ps map[string]*ProviderEnded, field string, n int64) {
	code, provider, ok := strings.Cut(field, "|")
	if !ok {
		return
	}
	p := ps[provider]
	if p == nil {
		p = &ProviderEnded{Errors: map[string]int64{}}
		ps[provider] = p
	}
	if code == providerOK {
		p.Solved += n
		return
	}
	p.Errors[code] += n
}
