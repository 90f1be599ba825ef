package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/demo"
)

type demoOptions struct {
	RedisURL string
	Jobs     int
	HTTPAddr string
	Hold     time.Duration
	log      logOptions
}

func newDemoCmd(env *Env) *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole pipeline in one process on embedded defaults: no Redis, no key",
		Long: `Run the whole pipeline in one process: an in-process Redis (miniredis), the
fake AnySolver with a realistic mix of errors, a worker, and a producer that
submits a few hundred jobs. It shows live progress and ends with a summary:
jobs by state and by error code, retries and throttles, createTask calls per job.

With --redis (or REDIS_URL) it runs on a real Redis instead (it uses its own
queue, "demo"). With --http the web UI and metrics are served while it runs.`,
		Example: `  go run ./cmd/solvequeue demo
  solvequeue demo --jobs 1000 --http 127.0.0.1:8080 --hold 5m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Jobs < 1 {
				return usageError("--jobs must be at least 1, got %d", o.Jobs)
			}
			log, err := o.log.logger(env.Stderr)
			if err != nil {
				return err
			}
			return demo.Run(cmd.Context(), demo.Options{RedisURL: o.RedisURL, Jobs: o.Jobs, HTTPAddr: o.HTTPAddr, Hold: o.Hold,
				Logger: log, Stdout: env.Stdout, Terminal: isTerminal(env.Stdout), Name: env.name()})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.RedisURL, "redis", "", "use this Redis instead of the in-process one")
	f.IntVar(&o.Jobs, "jobs", 300, "how many jobs to submit")
	f.StringVar(&o.HTTPAddr, "http", "", "serve the console, the web UI and metrics on this address while the demo runs, e.g. 127.0.0.1:8080")
	f.DurationVar(&o.Hold, "hold", 0, "with --http, keep serving this long after the summary so you can look around")
	o.log.register(cmd, "error")
	return cmd
}
