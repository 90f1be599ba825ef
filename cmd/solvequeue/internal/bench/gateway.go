package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
)

// The gateway section: createTask through the gateway over loopback HTTP, from 64 keep-alive
// clients, against Submit from 64 goroutines in process; and getTaskResult through the gateway
// against Status in process (StatusIn, the queue known, as the gateway knows it). Both sides run
// in this process on the same Redis, one after the other, twice; each keeps its best round.

// gatewayClients is how many HTTP clients (and in-process goroutines) run at once.
const gatewayClients = 64

const gatewayRounds = 2

// gatewayKey is the bench's one gateway key.
const gatewayKey = "bench-gateway-key-5e1d"

// gatewayFigures is one round's rates.
type gatewayFigures struct {
	submit, create, status, result float64
}

func runGateway(ctx context.Context, e *env, sz sizes, r *Report) error {
	r.Context.Sizes["gateway_jobs"] = sz.gatewayJobs
	r.Context.Sizes["gateway_clients"] = gatewayClients
	prc, err := e.openRedis(ctx, gatewayClients+8)
	if err != nil {
		return err
	}
	defer prc.Close()
	producer, err := enqueue.NewClient(enqueue.Config{Redis: prc})
	if err != nil {
		return err
	}
	grc, err := e.openRedis(ctx, gatewayClients+8)
	if err != nil {
		return err
	}
	defer grc.Close()
	gwClient, err := enqueue.NewClient(enqueue.Config{Redis: grc})
	if err != nil {
		return err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: gatewayClients, MaxIdleConnsPerHost: gatewayClients,
		MaxConnsPerHost: gatewayClients, IdleConnTimeout: time.Minute}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()

	var best gatewayFigures
	for round := 1; round <= gatewayRounds; round++ {
		f, err := gatewayRound(ctx, e, sz, producer, gwClient, hc, round)
		if err != nil {
			return err
		}
		if err := e.reset(ctx); err != nil {
			return err
		}
		for k, v := range map[string]float64{"submit_64_jobs_per_s": f.submit, "gateway_create_tasks_per_s": f.create,
			"status_per_s": f.status, "gateway_get_task_results_per_s": f.result} {
			r.Context.Details[fmt.Sprintf("%s_round%d", k, round)] = round0(v)
		}
		best.submit, best.create = max(best.submit, f.submit), max(best.create, f.create)
		best.status, best.result = max(best.status, f.status), max(best.result, f.result)
	}
	r.GatewayCreateTasksPerS = ptr(round0(best.create))
	r.Submit64JobsPerS = ptr(round0(best.submit))
	r.GatewayCreateVsSubmit = ratio(best.create, best.submit)
	r.GatewayGetTaskResultsPerS = ptr(round0(best.result))
	r.StatusPerS = ptr(round0(best.status))
	r.GatewayResultVsStatus = ratio(best.result, best.status)
	r.Context.Notes = append(r.Context.Notes, fmt.Sprintf("gateway: createTask over loopback HTTP from %d keep-alive clients "+
		"against Submit from %d goroutines, and getTaskResult against StatusIn (queue known), in process on the same Redis; "+
		"%d rounds, each side keeps its best", gatewayClients, gatewayClients, gatewayRounds))
	return nil
}

func gatewayRound(ctx context.Context, e *env, sz sizes, producer, gwClient *enqueue.Client, hc *http.Client, round int) (gatewayFigures, error) {
	var f gatewayFigures
	n := sz.gatewayJobs

	// The gateway: its one key sends jobs to a bench queue, deleted by the next reset.
	gq := e.queue(fmt.Sprintf("gateway-create-%d", round))
	keys, err := gateway.ParseKeys("bench", []byte("keys: [{name: bench, key: "+gatewayKey+", queue: "+gq+"}]"))
	if err != nil {
		return f, err
	}
	h, err := gateway.NewHandler(gateway.Config{Client: gwClient, Keys: keys, Logger: e.quietLogger()})
	if err != nil {
		return f, err
	}
	addr, stop, err := gateway.ListenAndServe(ctx, h, gateway.ServerConfig{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return f, err
	}
	defer func() { _ = stop(context.WithoutCancel(ctx)) }()
	base := "http://" + addr + "/"

	// In process: Submit, then StatusIn of every job.
	q := e.queue(fmt.Sprintf("gateway-submit-%d", round))
	jobs := makeJobs(q, "bench-gw-submit-", n)
	ids := make([]string, n)
	f.submit, err = fanOut(ctx, "submit64", n, func(ctx context.Context, i int) error {
		id, err := producer.Submit(ctx, jobs[i])
		ids[i] = id
		return err
	})
	if err != nil {
		return f, fmt.Errorf("submit: %w", err)
	}
	f.status, err = fanOut(ctx, "status", n, func(ctx context.Context, i int) error {
		_, err := producer.StatusIn(ctx, q, ids[i])
		return err
	})
	if err != nil {
		return f, fmt.Errorf("status: %w", err)
	}

	// Through the gateway: createTask, then getTaskResult of every task.
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i], _ = json.Marshal(map[string]any{"clientKey": gatewayKey, "task": job("", "bench-gw-create-"+strconv.Itoa(i)).Task})
	}
	taskIDs := make([]int64, n)
	f.create, err = fanOut(ctx, "gateway_create", n, func(ctx context.Context, i int) error {
		a, err := post(ctx, hc, base+gateway.MethodCreateTask, bodies[i])
		taskIDs[i] = a.TaskID
		if err == nil && (a.ErrorID != 0 || a.TaskID <= 0) {
			err = fmt.Errorf("createTask answered %+v", a)
		}
		return err
	})
	if err != nil {
		return f, fmt.Errorf("gateway createTask: %w", err)
	}
	f.result, err = fanOut(ctx, "gateway_result", n, func(ctx context.Context, i int) error {
		body := []byte(`{"clientKey":"` + gatewayKey + `","taskId":` + strconv.FormatInt(taskIDs[i], 10) + `}`)
		a, err := post(ctx, hc, base+gateway.MethodGetTaskResult, body)
		if err == nil && (a.ErrorID != 0 || a.Status != gateway.StatusProcessing) {
			err = fmt.Errorf("getTaskResult answered %+v", a)
		}
		return err
	})
	if err != nil {
		return f, fmt.Errorf("gateway getTaskResult: %w", err)
	}
	e.logf("bench: [gateway] round %d, %d jobs: Submit %.0f/s, createTask %.0f/s (%.2f); StatusIn %.0f/s, getTaskResult %.0f/s (%.2f)",
		round, n, f.submit, f.create, f.create/f.submit, f.status, f.result, f.result/f.status)
	return f, nil
}

// fanOut runs fn for 0..n-1 from gatewayClients goroutines and returns calls per second.
func fanOut(ctx context.Context, name string, n int, fn func(context.Context, int) error) (rate float64, err error) {
	labeled(ctx, name, func(ctx context.Context) {
		var next atomic.Int64
		var once sync.Once
		var wg sync.WaitGroup
		began := time.Now()
		for range gatewayClients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					if e := fn(ctx, i); e != nil {
						once.Do(func() { err = e })
						next.Store(int64(n))
						return
					}
				}
			}()
		}
		wg.Wait()
		rate = float64(n) / time.Since(began).Seconds()
	})
	return rate, err
}

// post sends one request to the gateway on a kept-alive connection and decodes the answer.
func post(ctx context.Context, hc *http.Client, url string, body []byte) (gateway.Answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return gateway.Answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return gateway.Answer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return gateway.Answer{}, err
	}
	var a gateway.Answer
	if err := json.Unmarshal(data, &a); err != nil {
		return gateway.Answer{}, fmt.Errorf("answer %q: %w", data, err)
	}
	return a, nil
}
