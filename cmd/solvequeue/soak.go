package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/chaos"
	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/soak"
)

type soakOptions struct {
	output outputOptions
	soak.Options
	chaos    bool
	chaosOpt chaos.Options
}

// Validate checks the options and names what is wrong.
func (o *soakOptions) Validate() error {
	if o.chaos {
		if err := o.chaosOpt.Validate(); err != nil {
			return usageError("%v", err)
		}
		return nil
	}
	if o.Duration <= 0 || o.Interval <= 0 || o.Rate <= 0 {
		return usageError("--duration, --interval and --rate must be positive")
	}
	if err := o.Options.Validate(); err != nil {
		return usageError("%v", err)
	}
	return nil
}

func newSoakCmd(env *Env) *cobra.Command {
	o := &soakOptions{}
	cmd := &cobra.Command{
		Use:   "soak",
		Short: "Run a steady mixed load with faults for a long time and check memory, goroutines and connections stay flat",
		Long: `Run solvequeue for --duration under a steady load: a producer submits --rate jobs a
second, a worker in this process solves them against the fake AnySolver (served over
loopback), which answers about one call in eight with a fault (SERVICE_UNAVAILABLE,
RATE_LIMITED, an HTML 502, a reset connection, garbage, a truncated answer, a failed task)
and one in fifty with DOMAIN_BANNED, and fails every call with 503 for 5 s every 2 minutes.

At the start and every --interval it prints the process's RSS and Go heap, its goroutines,
its open sockets (Redis, AnySolver and the fake's side), and Redis's used_memory. At the
end it waits for the jobs in flight and compares the first sample under load with the last:
the verdict is flat when each stayed within its limit and every job ended; otherwise the
command exits with status 1.

It starts a redis-server of its own unless --redis (or REDIS_URL) names one; on yours it
uses the queue "soak", whose finished jobs expire a minute after they end.

With --chaos it runs the chaos plan instead (see below): the real binary under crashes.
` + chaosHelp,
		Example: `  solvequeue soak                                  # 10 minutes, a sample a minute
  solvequeue soak --duration 2m --interval 15s --json > soak.json
  solvequeue soak --chaos                          # about 4 minutes; exit 1 on any violation
  solvequeue soak --chaos --jobs 300 --kills 3 --seed 7 --json > chaos.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			if o.chaos {
				return runChaos(cmd, env, o)
			}
			// The samples go out as they come: to stdout for people, to stderr beside --json.
			opts := o.Options
			opts.Progress, opts.Log = env.Stdout, env.Stderr
			if o.output.JSON {
				opts.Progress = env.Stderr
			}
			report, err := soak.Run(cmd.Context(), opts)
			if report == nil {
				return err
			}
			return printRunReport(env, o.output.JSON, report, func(w io.Writer) error { return soak.WriteSummary(w, report) },
				err, soak.ErrNotFlat)
		},
	}
	o.output.register(cmd)
	f := cmd.Flags()
	f.DurationVar(&o.Duration, "duration", soak.DurationDefault, "how long to submit jobs")
	f.DurationVar(&o.Interval, "interval", soak.IntervalDefault, "time between two samples")
	f.Float64Var(&o.Rate, "rate", soak.RateDefault, "jobs submitted per second")
	f.IntVar(&o.Concurrency, "concurrency", 0, "the worker's concurrency (default: the worker's own)")
	f.StringVar(&o.RedisURL, "redis", "", "run on this Redis instead of a redis-server of its own")
	f.BoolVar(&o.chaos, "chaos", false, "run the chaos plan with worker subprocesses instead of the steady soak")
	f.IntVar(&o.chaosOpt.Jobs, "jobs", chaos.JobsDefault, "with --chaos: jobs to submit")
	f.IntVar(&o.chaosOpt.Workers, "workers", chaos.WorkersDefault, "with --chaos: worker subprocesses")
	f.IntVar(&o.chaosOpt.Kills, "kills", chaos.KillsDefault, "with --chaos: how many times a worker is SIGKILLed and restarted")
	f.DurationVar(&o.chaosOpt.KillEvery, "kill-every", chaos.KillEveryDefault, "with --chaos: time between two worker kills")
	f.IntVar(&o.chaosOpt.RedisRestarts, "redis-restarts", 1, "with --chaos: how many times Redis is killed and restarted from its AOF")
	f.Uint64Var(&o.chaosOpt.Seed, "seed", chaos.SeedDefault, "with --chaos: seed of the job mix")
	f.DurationVar(&o.chaosOpt.Settle, "settle", chaos.SettleDefault, "with --chaos: the longest wait for every job and callback to settle")
	return cmd
}
