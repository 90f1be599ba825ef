package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench"
	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/inflight"
)

type benchOptions struct {
	output     outputOptions
	RedisURL   string
	Quick      bool
	Only       string
	CPUProfile string
}

// Validate checks the options and names what is wrong.
func (o *benchOptions) Validate() error {
	if err := o.benchOptions().Validate(); err != nil {
		return usageError("--only: %v", err)
	}
	return nil
}

func (o *benchOptions) benchOptions() bench.Options {
	var only []string
	for _, s := range strings.Split(o.Only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			only = append(only, s)
		}
	}
	return bench.Options{RedisURL: o.RedisURL, Quick: o.Quick, Only: only}
}

func newBenchCmd(env *Env) *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput, jobs in flight, polling, batch submit, spend and the gateway against their baselines",
		Long: `Measure solvequeue side by side with its baselines, in one run on one Redis, against
the fake AnySolver served in process over loopback HTTP:

  throughput  jobs/s of a no-op asynq handler (floor), a hand-written asynq handler
              (naive) and solvequeue's whole pipeline (e2e)
  inflight    10,000 jobs of 12 s each in one worker process: wall time, peak RSS, beside
              plain asynq holding as many handlers that only sleep (the floor)
  polling     polls per solve and added latency, adaptive against a fixed 3 s
  submit      batch submit against one job at a time
  spend       createTask calls per job on an error mix, our policy against retry-all
  gateway     createTask and getTaskResult through the gateway over loopback HTTP, from
              64 kept-alive connections, against Submit and StatusIn from 64 goroutines
  gateway2    createTask/s through two "solvequeue gateway" child processes on one Redis
              against one (gateway_two_vs_one), the same 64 connections split between
              them; each child runs with GOMAXPROCS=max(1, NumCPU/4), its own CPU share,
              and the key's quotas and rate limit (shared in Redis) are on
  cluster     the e2e run over three queues on a three-node Redis Cluster of its own
              (redis-server and redis-cli --cluster create on loopback ports), against
              the same run on the one Redis; skipped when redis-cli is missing
  fairness    a quiet gateway key's solve time right behind a noisy key's burst of 100
              jobs, against the same jobs alone (gateway_fairness)

Each comparison runs in rounds, its two sides alternating (A B A B ...) after a warm-up
round: 5 measured rounds in a full run, 3 with --quick (the in-flight section starts fresh
child processes each round and has no warm-up; the gateway's rounds are its 10 slices). The
throughput section mirrors each round (its four runs in order, then in reverse, each with half
the jobs), so that a burst of load on one run weighs on half its side's figure. A
rate is the median of its rounds; a ratio X is the median of the per-round ratios, with the
lowest and highest round as X_min and X_max in --json and as "median (min–max)" in the table.

It starts its own redis-server on a free loopback port unless --redis (or REDIS_URL) names
one; on a Redis of yours it uses queues named bench-* and deletes them afterwards.
Progress goes to stderr, a line per round, the figures to stdout. A full run takes about
10 minutes on a quiet 2-core machine.`,
		Example: `  solvequeue bench
  solvequeue bench --json > bench.json
  solvequeue bench --quick --only throughput,submit --cpuprofile cpu.pprof`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return runBench(cmd, env, o)
		},
	}
	o.output.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.RedisURL, "redis", "", "run on this Redis instead of a throwaway redis-server")
	f.BoolVar(&o.Quick, "quick", false, "small sizes and a tenth of the polling time scale: a try-out, not the figures")
	f.StringVar(&o.Only, "only", "", "run only these sections: "+strings.Join(bench.Sections, ","))
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	cmd.AddCommand(newBenchFloorWorkerCmd(env))
	return cmd
}

// newBenchFloorWorkerCmd is the in-flight section's floor: a plain asynq server whose handler
// only sleeps, run by the bench as a child process so that its memory is its own. Hidden: only
// the bench starts it.
func newBenchFloorWorkerCmd(env *Env) *cobra.Command {
	var (
		redisOpts   redisOptions
		queue       string
		concurrency int
		sleep       time.Duration
		pprofAddr   string
	)
	cmd := &cobra.Command{
		Use:    "floor-worker",
		Short:  "The in-flight floor: plain asynq whose handler sleeps (the bench runs it as a child process)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if queue == "" || concurrency < 1 {
				return usageError("--queue and a --concurrency of at least 1 are needed")
			}
			if pprofAddr != "" {
				_, stop, err := servePprof(pprofAddr)
				if err != nil {
					return usageError("--pprof: %v", err)
				}
				defer stop()
			}
			return inflight.RunFloorWorker(cmd.Context(), inflight.FloorWorkerOptions{RedisURL: redisOpts.URL, Queue: queue,
				Concurrency: concurrency, Sleep: sleep, Log: env.Stderr})
		},
	}
	redisOpts.register(cmd)
	f := cmd.Flags()
	f.StringVar(&queue, "queue", "", "the queue to serve")
	f.IntVar(&concurrency, "concurrency", 10_000, "asynq's concurrency")
	f.DurationVar(&sleep, "sleep", 20*time.Second, "how long each job's handler sleeps")
	f.StringVar(&pprofAddr, "pprof", "", "serve Go's profiles on this loopback address, as the worker's --pprof")
	return cmd
}

func runBench(cmd *cobra.Command, env *Env, o *benchOptions) error {
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return usageError("--cpuprofile: %v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	opts := o.benchOptions()
	opts.Progress = env.Stderr
	report, err := bench.Run(cmd.Context(), opts)
	if err != nil {
		return err
	}
	if o.output.JSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	return bench.WriteTable(env.Stdout, report)
}
