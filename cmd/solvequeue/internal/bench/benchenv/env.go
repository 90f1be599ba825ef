// Package benchenv is what the bench's sections share: the Redis and its queues (Env), the
// workload sizes, the report the sections fill in, the baseline asynq handler and the helpers that
// submit and wait. It runs no section itself.
package benchenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/clilog"
	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/rig"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/redact"
	"github.com/solvequeue/solvequeue/internal/redisconn"
)

// APIKey is the AnySolver key every client of the bench uses with the fake.
const APIKey = "bench-key"

// TaskType is the AnySolver task type of every bench job.
const TaskType = "RecaptchaV2TaskProxyless"

// EnqueueConcurrency is what SubmitMany is given in the bench: its default, as the CLI's batch.
const EnqueueConcurrency = enqueue.SubmitConcurrencyDefault

// Config configures an Env.
type Config struct {
	// RedisURL is the Redis to run on; "" starts a throwaway redis-server on a free loopback port.
	RedisURL string
	// Binary is the solvequeue executable the in-flight section runs as its worker process.
	Binary string
	// Progress receives one line per step.
	Progress io.Writer
}

// Env is what the sections share: one Redis, a way to make fresh queues, progress output.
type Env struct {
	// Config is what the Env was opened with.
	Config Config
	// Redis is the bench's Redis; RedisDesc says what it is, for the report.
	Redis     *rig.Redis
	RedisDesc string
	// RC is the bench's own client (drain checks, cleanup).
	RC redis.UniversalClient
	// Inspector is asynq's inspector on RC.
	Inspector *asynq.Inspector
	runID     string
	details   map[string]float64 // the report's extra figures (CPUDetail)
	queues    []string           // queues made on a Redis given by URL, deleted by reset

	mu sync.Mutex
}

// NewEnv opens the Redis c names (or starts one) and returns the Env on it.
func NewEnv(ctx context.Context, o Config) (*Env, error) {
	e := &Env{Config: o, runID: time.Now().UTC().Format("150405")}
	r, err := rig.OpenRedis(ctx, rig.RedisOptions{URL: o.RedisURL, PoolSize: 16})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	e.Redis, e.RC = r, r.Client
	e.Inspector = asynq.NewInspectorFromRedisClient(e.RC)
	version := "?"
	if info, err := e.RC.Info(ctx, "server").Result(); err == nil {
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
				version = v
			}
		}
	}
	if r.Server != nil {
		e.RedisDesc = fmt.Sprintf("its own redis-server %s on %s (no persistence)", version, r.Server.Addr)
	} else {
		e.RedisDesc = fmt.Sprintf("Redis %s at %s", version, redact.URL(r.URL))
	}
	return e, nil
}

// Close closes the Redis (and stops the bench's own server).
func (e *Env) Close() {
	if err := e.Redis.Close(); err != nil {
		e.Logf("bench: closing Redis: %v", err)
	}
}

// RunID is this run's tag in the names of the queues it makes: "bench-" + RunID + "-" + name.
func (e *Env) RunID() string { return e.runID }

// Details returns a copy of the extra figures CPUDetail kept.
func (e *Env) Details() map[string]float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]float64, len(e.details))
	for k, v := range e.details {
		out[k] = v
	}
	return out
}

// Logf writes one line of progress.
func (e *Env) Logf(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fmt.Fprintf(e.Config.Progress, format+"\n", args...)
}

// queue returns a fresh queue name for a section's run.
func (e *Env) Queue(name string) string {
	q := "bench-" + e.runID + "-" + name
	e.mu.Lock()
	e.queues = append(e.queues, q)
	e.mu.Unlock()
	return q
}

// reset clears what the last section left: FLUSHDB on the bench's own server; on a Redis
// given by URL, the bench's queues and their dead letters only.
func (e *Env) Reset(ctx context.Context) error {
	if e.Redis.Own() {
		return e.RC.FlushDB(ctx).Err()
	}
	e.mu.Lock()
	queues := e.queues
	e.queues = nil
	e.mu.Unlock()
	for _, q := range queues {
		if err := e.Inspector.DeleteQueue(q, true); err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			return fmt.Errorf("delete bench queue %s: %w", q, err)
		}
		if err := e.RC.Del(ctx, keys.DeadLetters(q)).Err(); err != nil {
			return err
		}
	}
	return nil
}

// asynqOpt is the Redis connection a plain asynq user would build from the URL: asynq's own
// failover and cluster options for a Sentinel's or a cluster's URL (which asynq's ParseRedisURI
// does not read as solvequeue does).
func (e *Env) AsynqOpt() (asynq.RedisConnOpt, error) { return AsynqOptFor(e.Redis.URL) }

// AsynqOptFor is asynqOpt for a Redis URL.
func AsynqOptFor(url string) (asynq.RedisConnOpt, error) {
	if o, err := redisconn.ParseSentinelURL(url); err == nil {
		return asynq.RedisFailoverClientOpt{MasterName: o.MasterName, SentinelAddrs: o.SentinelAddrs,
			SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
			Username: o.Username, Password: o.Password, DB: o.DB}, nil
	}
	if o, err := redisconn.ParseClusterURL(url); err == nil {
		return asynq.RedisClusterClientOpt{Addrs: o.Addrs, Username: o.Username, Password: o.Password}, nil
	}
	return asynq.ParseRedisURI(url)
}

// openRedis opens a client for a section's producer or worker, as the CLI would.
func (e *Env) OpenRedis(ctx context.Context, poolSize int) (redis.UniversalClient, error) {
	return e.Redis.Open(ctx, poolSize)
}

// queueCounts returns how many tasks of queue are not yet done: pending, active, scheduled
// and retrying (paused queues count too).
func (e *Env) QueueCounts(ctx context.Context, queue string) (int64, error) {
	pipe := e.RC.Pipeline()
	prefix := keys.AsynqQueuePrefix(queue)
	cmds := []*redis.IntCmd{
		pipe.LLen(ctx, prefix+"pending"), pipe.LLen(ctx, prefix+"active"),
		pipe.ZCard(ctx, prefix+"scheduled"), pipe.ZCard(ctx, prefix+"retry"),
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}

// waitDrained waits until queue holds no task that is pending, active, scheduled or retrying,
// checking every `every`, and returns when it saw that. A cheap pipeline of four counts, so
// checking often does not slow the run it watches.
func (e *Env) WaitDrained(ctx context.Context, queue string, every time.Duration, limit time.Duration, progress func(left int64)) (time.Time, error) {
	deadline := time.Now().Add(limit)
	lastReport := time.Now()
	for {
		n, err := e.QueueCounts(ctx, queue)
		if err != nil {
			return time.Time{}, err
		}
		now := time.Now()
		if n == 0 {
			return now, nil
		}
		if progress != nil && now.Sub(lastReport) >= 2*time.Second {
			progress(n)
			lastReport = now
		}
		if now.After(deadline) {
			return time.Time{}, fmt.Errorf("queue %s still has %d unfinished tasks after %s", queue, n, limit)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(every):
		}
	}
}

// waitAllDrained waits until every queue is drained (see waitDrained) and returns when the last
// one was seen drained.
func (e *Env) WaitAllDrained(ctx context.Context, queues []string, every, limit time.Duration) (time.Time, error) {
	var end time.Time
	for _, q := range queues {
		t, err := e.WaitDrained(ctx, q, every, limit, nil)
		if err != nil {
			return time.Time{}, err
		}
		end = t
	}
	return end, nil
}

// SlogError is the level of a logger that says only what went wrong.
const SlogError = slog.LevelError

// quietLogger is the workers' logger in the bench: warnings and errors go to the progress
// output, the per-job info lines nowhere (the in-flight worker process keeps its defaults).
func (e *Env) QuietLogger() *slog.Logger { return e.Logger(slog.LevelWarn) }

// logger logs at level and above to the progress output.
func (e *Env) Logger(level slog.Level) *slog.Logger {
	return clilog.New(lockedWriter{e}, clilog.Text, level)
}

type lockedWriter struct{ e *Env }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	return w.e.Config.Progress.Write(p)
}

var _ io.Writer = lockedWriter{}

// job is a bench job: a token task the fake solves as its script says for websiteKey.
func Job(queue, websiteKey string) enqueue.Job {
	return enqueue.Job{Queue: queue, Task: map[string]any{
		"type": TaskType, "websiteURL": "https://bench.example/login", "websiteKey": websiteKey}}
}

// CPUMeter reads the CPU time spent by this process and by the Redis server, so a run can be
// judged by its cost per job as well as its rate: on a shared machine the cost varies less.
type CPUMeter struct {
	e                *Env
	proc, redisStart time.Duration
	calls            map[string]int64 // Redis's command counts at the start
}

// StartCPU starts measuring the CPU spent by this process and by Redis, and the commands Redis
// runs.
func (e *Env) StartCPU(ctx context.Context) CPUMeter {
	return CPUMeter{e: e, proc: ProcessCPU(), redisStart: e.RedisCPU(ctx), calls: e.redisCalls(ctx)}
}

// CallsDetail puts in the report's details how many times per job Redis ran, since the start,
// a script call (EVALSHA or EVAL: each is a round trip of its own, or a place in a pipeline)
// and RPOPLPUSH (asynq's fetch tries one per queue it looks at), as name_redis_scripts_per_job
// and name_redis_fetch_tries_per_job. On a Redis Cluster it says nothing.
func (m CPUMeter) CallsDetail(ctx context.Context, name string, jobs int) {
	if m.calls == nil {
		return
	}
	now := m.e.redisCalls(ctx)
	per := func(cmds ...string) float64 {
		var n int64
		for _, c := range cmds {
			n += now[c] - m.calls[c]
		}
		return Round(float64(n)/float64(jobs), 2)
	}
	m.e.mu.Lock()
	defer m.e.mu.Unlock()
	if m.e.details == nil {
		m.e.details = map[string]float64{}
	}
	m.e.details[name+"_redis_scripts_per_job"] = per("evalsha", "eval")
	m.e.details[name+"_redis_fetch_tries_per_job"] = per("rpoplpush")
}

// redisCalls reads how many times Redis ran each command (INFO commandstats, which counts the
// commands scripts run too); nil on a Cluster or when INFO does not answer.
func (e *Env) redisCalls(ctx context.Context) map[string]int64 {
	if _, ok := e.RC.(*redis.ClusterClient); ok {
		return nil
	}
	info, err := e.RC.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil
	}
	calls := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, ",")
		if v, err := strconv.ParseInt(n, 10, 64); err == nil {
			calls[strings.TrimPrefix(name, "cmdstat_")] = v
		}
	}
	return calls
}

// perJob returns the microseconds of CPU per job spent since start by this process and by Redis.
func (m CPUMeter) PerJob(ctx context.Context, jobs int) (proc, redis float64) {
	p := ProcessCPU() - m.proc
	r := m.e.RedisCPU(ctx) - m.redisStart
	return float64(p.Microseconds()) / float64(jobs), float64(r.Microseconds()) / float64(jobs)
}

// redisCPU is the server's used_cpu_sys + used_cpu_user (on a cluster, every primary's sum); 0
// when INFO does not say.
func (e *Env) RedisCPU(ctx context.Context) time.Duration {
	cc, ok := e.RC.(*redis.ClusterClient)
	if !ok {
		return serverCPU(ctx, e.RC)
	}
	var (
		mu    sync.Mutex
		total time.Duration
	)
	_ = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		d := serverCPU(ctx, node)
		mu.Lock()
		total += d
		mu.Unlock()
		return nil
	})
	return total
}

// serverCPU is one server's used_cpu_sys + used_cpu_user; 0 when INFO does not say.
func serverCPU(ctx context.Context, c redis.Cmdable) time.Duration {
	info, err := c.Info(ctx, "cpu").Result()
	if err != nil {
		return 0
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		for _, key := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(line, key); ok {
				var f float64
				if _, err := fmt.Sscan(v, &f); err == nil {
					total += f
				}
			}
		}
	}
	return time.Duration(total * float64(time.Second))
}

// cpuDetail keeps the lowest CPU cost per job seen for a run in the report's details.
func (e *Env) CPUDetail(name string, proc, redis float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.details == nil {
		e.details = map[string]float64{}
	}
	for k, v := range map[string]float64{name + "_cpu_us_per_job_process": proc, name + "_cpu_us_per_job_redis": redis} {
		if old, ok := e.details[k]; !ok || v < old {
			e.details[k] = Round(v, 0)
		}
	}
}
