// Package gatewaybench is the bench's gateway section: AnySolver's protocol through the gateway
// over loopback HTTP against the producer API called directly.
package gatewaybench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/benchenv"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
)

// The gateway section: createTask through the gateway over loopback HTTP, from 64 keep-alive
// clients, against Submit from 64 goroutines in process; and getTaskResult through the gateway
// against StatusIn in process (the queue known, as the gateway knows it). Both sides run in this
// process on the same Redis, interleaved in slices (which side goes first alternates) after
// warm-up slices, so that the load of a shared machine falls on both alike. Each slice is a
// round: a rate is the median of the slices' rates, a ratio the median of the per-slice ratios
// (benchenv's rounds.go says why).

// gatewayClients is how many HTTP clients (and in-process goroutines) run at once.
const gatewayClients = 64

// gatewaySlices is how many interleaved slices the jobs are measured in, after the warm-up slices.
const gatewaySlices = 10

// gatewayKey is the bench's one gateway key.
const gatewayKey = "bench-gateway-key-5e1d"

// side sums what one side of a comparison took over the measured slices: calls, the rate of
// each slice, and CPU here and in Redis.
type side struct {
	name        string
	calls       int
	rates       []float64 // calls per second, slice by slice
	proc, redis time.Duration
}

// run times fn for 0..n-1 from gatewayClients goroutines and, unless warm is set, adds it to
// the side.
func (s *side) run(ctx context.Context, e *benchenv.Env, n int, warm bool, fn func(ctx context.Context, worker, i int) error) error {
	proc0, redis0 := benchenv.ProcessCPU(), e.RedisCPU(ctx)
	took, err := fanOut(ctx, s.name, n, fn)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	if warm {
		return nil
	}
	s.calls += n
	s.rates = append(s.rates, float64(n)/took.Seconds())
	s.proc += benchenv.ProcessCPU() - proc0
	s.redis += e.RedisCPU(ctx) - redis0
	return nil
}

// last is the side's rate in the last measured slice.
func (s *side) last() float64 { return s.rates[len(s.rates)-1] }

// detail puts the side's CPU per call in the report's details.
func (s *side) detail(e *benchenv.Env) {
	e.CPUDetail(s.name, float64(s.proc.Microseconds())/float64(s.calls), float64(s.redis.Microseconds())/float64(s.calls))
}

// Run runs the gateway section: createTask and getTaskResult through the gateway against Submit
// and StatusIn, and writes its figures to r.
func Run(ctx context.Context, e *benchenv.Env, sz benchenv.Sizes, r *benchenv.Report) error {
	n := sz.GatewayJobs
	r.Context.Sizes["gateway_jobs"] = n
	r.Context.Sizes["gateway_clients"] = gatewayClients
	prc, err := e.OpenRedis(ctx, gatewayClients+8)
	if err != nil {
		return err
	}
	defer prc.Close()
	producer, err := enqueue.NewClient(enqueue.Config{Redis: prc})
	if err != nil {
		return err
	}
	// The gateway: its one key sends jobs to a bench queue, deleted after the section; no job
	// quotas, as no worker ends its jobs.
	q, gq := e.Queue("gateway-submit"), e.Queue("gateway-create")
	addr, stop, err := e.StartGateway(ctx, gatewayClients+8,
		"keys: [{name: bench, key: "+gatewayKey+", queue: "+gq+", maxJobsInFlight: 0, maxJobsWaiting: 0}]")
	if err != nil {
		return err
	}
	defer stop()
	conns := make([]*loadConn, gatewayClients)
	for i := range conns {
		if conns[i], err = dialLoad(ctx, addr); err != nil {
			return err
		}
		defer conns[i].close()
	}

	submit, create := &side{name: "submit64"}, &side{name: "gateway_create"}
	status, result := &side{name: "status"}, &side{name: "gateway_result"}
	per := max(1, n/gatewaySlices)
	for slice := range sz.WarmupRounds + gatewaySlices {
		warm := slice < sz.WarmupRounds
		jobs := benchenv.MakeJobs(q, fmt.Sprintf("bench-gw-submit-%d-", slice), per)
		ids := make([]string, per)
		bodies := make([][]byte, per)
		for i := range bodies {
			bodies[i], _ = json.Marshal(map[string]any{"clientKey": gatewayKey,
				"task": benchenv.Job("", fmt.Sprintf("bench-gw-create-%d-%d", slice, i)).Task})
		}
		taskIDs := make([]int64, per)
		inProcessSubmit := func() error {
			return submit.run(ctx, e, per, warm, func(ctx context.Context, _, i int) error {
				id, err := producer.Submit(ctx, jobs[i])
				ids[i] = id
				return err
			})
		}
		gatewayCreate := func() error {
			return create.run(ctx, e, per, warm, func(_ context.Context, worker, i int) error {
				a, err := conns[worker].post("/"+gateway.MethodCreateTask, bodies[i])
				taskIDs[i] = a.TaskID
				if err == nil && (a.ErrorID != 0 || a.TaskID <= 0) {
					err = fmt.Errorf("createTask answered %+v", a)
				}
				return err
			})
		}
		inProcessStatus := func() error {
			return status.run(ctx, e, per, warm, func(ctx context.Context, _, i int) error {
				_, err := producer.StatusIn(ctx, q, ids[i])
				return err
			})
		}
		gatewayResult := func() error {
			return result.run(ctx, e, per, warm, func(_ context.Context, worker, i int) error {
				body := []byte(`{"clientKey":"` + gatewayKey + `","taskId":` + strconv.FormatInt(taskIDs[i], 10) + `}`)
				a, err := conns[worker].post("/"+gateway.MethodGetTaskResult, body)
				if err == nil && (a.ErrorID != 0 || a.Status != gateway.StatusProcessing) {
					err = fmt.Errorf("getTaskResult answered %+v", a)
				}
				return err
			})
		}
		steps := []func() error{inProcessSubmit, gatewayCreate, inProcessStatus, gatewayResult}
		if slice%2 == 1 {
			steps = []func() error{gatewayCreate, inProcessSubmit, gatewayResult, inProcessStatus}
		}
		began := time.Now()
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		took := time.Since(began).Round(100 * time.Millisecond)
		if warm {
			e.Logf("bench: [gateway] warm-up: %d calls of each kind in %s", per, took)
			continue
		}
		e.Logf("bench: [gateway] slice %d/%d in %s: Submit %.0f/s, createTask %.0f/s; StatusIn %.0f/s, getTaskResult %.0f/s",
			slice+1-sz.WarmupRounds, gatewaySlices, took, submit.last(), create.last(), status.last(), result.last())
	}
	for _, s := range []*side{submit, create, status, result} {
		s.detail(e)
	}
	createVs, resultVs := benchenv.RatioSpread(create.rates, submit.rates), benchenv.RatioSpread(result.rates, status.rates)
	e.Logf("bench: [gateway] %d jobs in %d slices, medians: Submit %.0f/s, createTask %.0f/s (%.2f); StatusIn %.0f/s, getTaskResult %.0f/s (%.2f)",
		submit.calls, gatewaySlices, benchenv.SpreadOf(submit.rates).Median, benchenv.SpreadOf(create.rates).Median, createVs.Median,
		benchenv.SpreadOf(status.rates).Median, benchenv.SpreadOf(result.rates).Median, resultVs.Median)
	r.GatewayCreateTasksPerS = benchenv.SpreadOf(create.rates).Rounded(0)
	r.Submit64JobsPerS = benchenv.SpreadOf(submit.rates).Rounded(0)
	r.GatewayCreateVsSubmit, r.GatewayCreateVsSubmitMin, r.GatewayCreateVsSubmitMax = createVs.Ptrs(3)
	r.GatewayGetTaskResultsPerS = benchenv.SpreadOf(result.rates).Rounded(0)
	r.StatusPerS = benchenv.SpreadOf(status.rates).Rounded(0)
	r.GatewayResultVsStatus, r.GatewayResultVsStatusMin, r.GatewayResultVsStatusMax = resultVs.Ptrs(3)
	r.Context.Notes = append(r.Context.Notes, fmt.Sprintf("gateway: createTask over loopback HTTP/1.1 from %d kept-alive connections "+
		"(a lean load generator in the bench's process, like wrk) against Submit from %d goroutines, and getTaskResult "+
		"against StatusIn (queue known), in process on the same Redis, interleaved in %d slices after %d warm-up slices: "+
		"each rate is the median of the slices' rates, each ratio the median of the per-slice ratios", gatewayClients, gatewayClients, gatewaySlices, sz.WarmupRounds))
	return nil
}

// fanOut runs fn for 0..n-1 from gatewayClients goroutines (worker is the goroutine's number)
// and returns how long it took.
func fanOut(ctx context.Context, name string, n int, fn func(ctx context.Context, worker, i int) error) (took time.Duration, err error) {
	benchenv.Labeled(ctx, name, func(ctx context.Context) {
		var next atomic.Int64
		var once sync.Once
		var wg sync.WaitGroup
		began := time.Now()
		for worker := range gatewayClients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					if e := fn(ctx, worker, i); e != nil {
						once.Do(func() { err = e })
						next.Store(int64(n))
						return
					}
				}
			}()
		}
		wg.Wait()
		took = time.Since(began)
	})
	return took, err
}

// loadConn is one kept-alive HTTP/1.1 connection to the gateway that sends a POST and reads its
// answer, and nothing more: no pool, no goroutines of its own, no redirects. Like wrk, it is a
// load generator that costs little, so that the CPU it shares with the gateway on this machine
// goes to the gateway. Each fanOut goroutine owns one.
type loadConn struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	host string
}

func dialLoad(ctx context.Context, addr string) (*loadConn, error) {
	c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to the gateway: %w", err)
	}
	return &loadConn{conn: c, r: bufio.NewReader(c), w: bufio.NewWriter(c), host: addr}, nil
}

func (l *loadConn) close() { _ = l.conn.Close() }

// post sends one request and decodes the answer; any HTTP status but 200 is an error.
func (l *loadConn) post(path string, body []byte) (gateway.Answer, error) {
	_ = l.conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(l.w, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, l.host, len(body))
	l.w.Write(body)
	if err := l.w.Flush(); err != nil {
		return gateway.Answer{}, err
	}
	resp, err := http.ReadResponse(l.r, nil)
	if err != nil {
		return gateway.Answer{}, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return gateway.Answer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return gateway.Answer{}, fmt.Errorf("HTTP %d: %s", resp.StatusCode, data)
	}
	var a gateway.Answer
	if err := json.Unmarshal(data, &a); err != nil {
		return gateway.Answer{}, fmt.Errorf("answer %q: %w", data, err)
	}
	return a, nil
}
