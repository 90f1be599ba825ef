package gatewaybench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/benchenv"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
	"github.com/solvequeue/solvequeue/internal/keys"
)

// The gateway2 section: the gateway scaled out. Two real `solvequeue gateway` child processes on
// the bench's Redis, each on its own loopback port, answer createTask from gatewayClients
// kept-alive connections split evenly between them (side "two"), against the same connections
// all on one of them (side "one"). The figure is createTasks/s; gateway_two_vs_one is the median
// of the per-round ratios two/one, the sides alternating in rounds after a warm-up round
// (benchenv.Alternate).
//
// The scale-out unit of a gateway deployment is a process with CPU of its own. On a small
// machine one Go process already uses every core, so two processes could only share the same
// cores and the ratio would measure nothing but the machine. So every child, in both sides, runs
// with GOMAXPROCS = max(1, NumCPU/4): one core each on a 2- or 4-core machine, which leaves the
// rest to the load generator (in the bench's process) and redis-server. The children's CPU per
// call, Redis's and the load generator's are in the details, with how busy the machine's cores
// were in each side, so that a ratio short of 2 can be read: on 2 cores the second process
// takes its core from the load generator and Redis.
//
// The one key has its quotas and a rate limit on, all far above what a run sends, so that both
// sides go through the quota scripts and the rate limiter that every gateway shares in Redis (a
// hot key per gateway key that each call updates with a Lua script). No worker runs, so the
// jobs stay waiting: before each run the section deletes the queue and the key's quota and rate
// keys, so that every run starts from the same empty state, and after it checks that every call
// was admitted to the queue and counted against the quotas and the rate limit.

// gateway2Quota is the key's maxJobsInFlight and maxJobsWaiting, and gateway2Rate its rateLimit
// per second: on, and far above what a run sends.
const (
	gateway2Quota = 1_000_000
	gateway2Rate  = 1_000_000
)

// gateway2KeyName is the name of the section's one gateway key.
const gateway2KeyName = "bench2"

// gateway2Cost sums what one side spent over its measured rounds.
type gateway2Cost struct {
	calls                    int
	wall                     time.Duration
	gateways, redis, loadgen time.Duration
}

// RunTwoProcesses runs the gateway2 section: createTask through two gateway processes against
// one, and writes its figures to r.
func RunTwoProcesses(ctx context.Context, e *benchenv.Env, sz benchenv.Sizes, r *benchenv.Report) error {
	n := sz.Gateway2Calls
	procs := max(1, runtime.NumCPU()/4)
	r.Context.Sizes["gateway2_calls"] = n
	r.Context.Sizes["gateway2_clients"] = gatewayClients
	r.Context.Sizes["gateway2_gomaxprocs"] = procs
	r.Context.Sizes["gateway2_rounds"] = sz.Rounds

	q := e.Queue("gateway2")
	dir, err := os.MkdirTemp("", "solvequeue-bench-gateway2-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	keysFile := filepath.Join(dir, "keys.yaml")
	keysYAML := fmt.Sprintf("keys: [{name: %s, key: %s, queue: %s, rateLimit: %d, maxJobsInFlight: %d, maxJobsWaiting: %d}]\n",
		gateway2KeyName, gatewayKey, q, gateway2Rate, gateway2Quota, gateway2Quota)
	if err := os.WriteFile(keysFile, []byte(keysYAML), 0o600); err != nil {
		return err
	}
	gws, addrs := make([]*benchenv.Child, 2), make([]string, 2)
	for i := range gws {
		if gws[i], addrs[i], err = startGatewayProcess(ctx, e, keysFile, procs); err != nil {
			return err
		}
		defer gws[i].Stop()
	}
	e.Logf("bench: [gateway2] two gateway processes (GOMAXPROCS=%d each) at %s and %s", procs, addrs[0], addrs[1])

	// Side one: every connection to the first process. Side two: as many, every other one to the
	// second process. Dialled afresh before each run (untimed): a connection that waits for its
	// first request longer than the gateway's ReadHeaderTimeout is closed by the gateway.
	one, two := make([]string, gatewayClients), make([]string, gatewayClients)
	for i := range one {
		one[i], two[i] = addrs[0], addrs[i%2]
	}
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i], _ = json.Marshal(map[string]any{"clientKey": gatewayKey,
			"task": benchenv.Job("", "bench-gw2-"+strconv.Itoa(i)).Task})
	}

	costs := map[string]*gateway2Cost{"one": {}, "two": {}}
	run := func(side string, addrs []string) func(context.Context, int) (float64, error) {
		return func(ctx context.Context, round int) (float64, error) {
			if err := clearGateway2(ctx, e, q); err != nil {
				return 0, err
			}
			conns := make([]*loadConn, len(addrs))
			for i, addr := range addrs {
				c, err := dialLoad(ctx, addr)
				if err != nil {
					return 0, err
				}
				defer c.close()
				conns[i] = c
			}
			gw0, redis0, load0 := gws[0].CPU()+gws[1].CPU(), e.RedisCPU(ctx), benchenv.ProcessCPU()
			took, err := fanOut(ctx, "gateway2_"+side, n, func(_ context.Context, worker, i int) error {
				a, err := conns[worker].post("/"+gateway.MethodCreateTask, bodies[i])
				if err == nil && (a.ErrorID != 0 || a.TaskID <= 0) {
					err = fmt.Errorf("createTask answered %+v", a)
				}
				return err
			})
			if err != nil {
				return 0, fmt.Errorf("%w\n%s\n%s", err, gws[0].Tail(), gws[1].Tail())
			}
			gw, rd, ld := gws[0].CPU()+gws[1].CPU()-gw0, e.RedisCPU(ctx)-redis0, benchenv.ProcessCPU()-load0
			if err := checkGateway2(ctx, e, q, n); err != nil {
				return 0, err
			}
			if round > sz.WarmupRounds {
				c := costs[side]
				c.calls += n
				c.wall += took
				c.gateways += gw
				c.redis += rd
				c.loadgen += ld
			}
			return float64(n) / took.Seconds(), nil
		}
	}
	rounds, err := e.Alternate(ctx, benchenv.RoundsConfig{Section: benchenv.SectionGateway2, Warmup: sz.WarmupRounds, Measured: sz.Rounds},
		benchenv.Side{Name: "one process createTask/s", Run: run("one", one)},
		benchenv.Side{Name: "two processes createTask/s", Run: run("two", two)})
	if err != nil {
		return err
	}
	if err := clearGateway2(ctx, e, q); err != nil {
		return err
	}
	oneRates, twoRates := rounds[0], rounds[1]
	ratio := benchenv.RatioSpread(twoRates, oneRates)
	r.GatewayTwoVsOne, r.GatewayTwoVsOneMin, r.GatewayTwoVsOneMax = ratio.Ptrs(3)
	r.GatewayOneProcCreatesPerS = benchenv.SpreadOf(oneRates).Rounded(0)
	r.GatewayTwoProcCreatesPerS = benchenv.SpreadOf(twoRates).Rounded(0)
	d := r.Context.Details
	benchenv.RoundDetails(d, "gateway_one_process_create_tasks_per_s", oneRates, 0)
	benchenv.RoundDetails(d, "gateway_two_processes_create_tasks_per_s", twoRates, 0)
	for _, side := range []string{"one", "two"} {
		c := costs[side]
		perCall := func(t time.Duration) float64 { return benchenv.Round(float64(t.Microseconds())/float64(c.calls), 1) }
		d["gateway2_"+side+"_cpu_us_per_call_gateways"] = perCall(c.gateways)
		d["gateway2_"+side+"_cpu_us_per_call_redis"] = perCall(c.redis)
		d["gateway2_"+side+"_cpu_us_per_call_loadgen"] = perCall(c.loadgen)
		// busy: the share of the machine's cores that the three kinds of process used while the
		// side ran; near 1, the machine, not the gateway, bounds the rate.
		d["gateway2_"+side+"_cores_busy"] = benchenv.Round((c.gateways+c.redis+c.loadgen).Seconds()/(c.wall.Seconds()*float64(runtime.NumCPU())), 2)
		e.Logf("bench: [gateway2] %s: CPU per createTask: gateways %.0f µs, Redis %.0f µs, load generator %.0f µs; %.0f%% of %d cores busy",
			side, perCall(c.gateways), perCall(c.redis), perCall(c.loadgen), 100*d["gateway2_"+side+"_cores_busy"], runtime.NumCPU())
	}
	e.Logf("bench: [gateway2] medians: one process %.0f createTask/s, two %.0f/s: two/one %.2f (%.2f–%.2f)",
		benchenv.SpreadOf(oneRates).Median, benchenv.SpreadOf(twoRates).Median, ratio.Median, ratio.Min, ratio.Max)
	r.Context.Notes = append(r.Context.Notes, fmt.Sprintf("gateway2: createTask through two `solvequeue gateway` child processes "+
		"on one Redis against one, from %d kept-alive connections (split evenly for two), %d calls per side and round, %d rounds "+
		"after %d warm-up; every child runs with GOMAXPROCS=%d (max(1, NumCPU/4)) in both sides, the CPU of one scale-out unit, "+
		"so that two processes do not share the cores one already uses; the key's quotas and rate limit are on (shared in Redis); "+
		"CPU per call of the gateways, Redis and the load generator in the details (gateway2_*)",
		gatewayClients, n, sz.Rounds, sz.WarmupRounds, procs))
	return nil
}

// gateway2Keys are the key's quota and rate keys in Redis, shared by every gateway.
func gateway2Keys(q string) []string {
	return []string{keys.GatewayRate(q, gateway2KeyName), keys.GatewayInFlight(q, gateway2KeyName), keys.GatewayWaiting(q, gateway2KeyName),
		keys.GatewayImageBytes(q, gateway2KeyName), keys.GatewayImageBytesTotal(q, gateway2KeyName)}
}

// clearGateway2 deletes the section's queue with its jobs and the key's quota and rate keys, so
// that a run starts from nothing waiting. An asynq client names its queue in asynq's set of
// queues at its first enqueue only, and the gateways' clients enqueued before the last delete
// took it out of the set: it goes back in first, or asynq's DeleteQueue would not find it.
func clearGateway2(ctx context.Context, e *benchenv.Env, q string) error {
	if err := e.RC.SAdd(ctx, keys.AsynqQueues, q).Err(); err != nil {
		return err
	}
	if err := e.Inspector.DeleteQueue(q, true); err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		return fmt.Errorf("delete the gateway2 queue: %w", err)
	}
	return e.RC.Del(ctx, gateway2Keys(q)...).Err()
}

// checkGateway2 checks that a run of n createTasks queued n jobs and counted each against the
// key's waiting quota in Redis: the shared quota path ran in every call. (The rate limiter's key
// cannot tell afterwards: at this rate it expires a millisecond after the last call.)
func checkGateway2(ctx context.Context, e *benchenv.Env, q string, n int) error {
	queued, err := e.QueueCounts(ctx, q)
	if err != nil {
		return err
	}
	waiting, err := e.RC.ZCard(ctx, keys.GatewayWaiting(q, gateway2KeyName)).Result()
	if err != nil {
		return err
	}
	if queued != int64(n) || waiting != int64(n) {
		return fmt.Errorf("after %d createTasks: %d jobs queued, %d counted waiting by the key's quota; want %d of each", n, queued, waiting, n)
	}
	return nil
}

// servingURL finds the address in the gateway's "serving AnySolver's API" line, text or JSON.
var servingURL = regexp.MustCompile(`serving AnySolver's API.*http://(127\.0\.0\.1:[0-9]+)/`)

// startGatewayProcess runs `solvequeue gateway` with keysFile on a free loopback port (the
// kernel picks it: --addr 127.0.0.1:0, read back from its start line) and GOMAXPROCS=procs, and
// returns it and its address once it serves.
func startGatewayProcess(ctx context.Context, e *benchenv.Env, keysFile string, procs int) (*benchenv.Child, string, error) {
	return e.StartChild(ctx, benchenv.ChildConfig{Name: "gateway",
		Args: []string{"gateway", "--addr", "127.0.0.1:0", "--keys", keysFile, "--log-format", "json"},
		Env:  []string{"GOMAXPROCS=" + strconv.Itoa(procs)},
		Ready: func(line string) (string, bool) {
			if m := servingURL.FindStringSubmatch(line); m != nil {
				return m[1], true
			}
			return "", false
		}})
}
