package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/batch"
	"github.com/solvequeue/solvequeue/enqueue"
)

type batchOptions struct {
	redis       redisOptions
	Out         string
	Concurrency int
	NoWait      bool
	Progress    string
}

func newBatchCmd(env *Env) *cobra.Command {
	o := &batchOptions{}
	cmd := &cobra.Command{
		Use:   "batch FILE|-",
		Short: "Submit a JSON-lines file of jobs, wait, and write one outcome line per job",
		Long: `Submit every job of a JSON-lines file ('-' for stdin), wait for all of them,
and write one outcome line per job as each ends:
  {"id":...,"state":"solved|failed|dead","solution":...,"error":{...},"attempts":...,"line":N}

The whole file is checked first: a bad line exits with status 2, naming the line
and the field, and nothing is submitted. The file is read a line at a time (twice:
to check it, then to submit), so memory stays small whatever its size; a batch
from stdin is spilled to a temporary file ($TMPDIR) for the second reading. A line without an "id" gets one derived
from its line number and text, so running the same file again submits nothing
twice: it finds the jobs already in Redis and collects their outcomes (resumable).

Exit status:
  0  every job has its outcome line, whatever its state: a failed or dead job is
     an outcome, not an error of the batch; read each line's "state" (with
     --no-wait: every job was submitted)
  1  some jobs were not submitted or waiting stopped (Ctrl-C, Redis gone): run
     the same command again to submit or collect the rest; or a job's outcome
     could not be read (state "unknown": deleted, or past its 24 h retention)
  2  a bad file or flag: nothing was submitted`,
		Example: `  solvequeue batch jobs.jsonl --out outcomes.jsonl
  cat jobs.jsonl | solvequeue batch - > outcomes.jsonl
  solvequeue batch jobs.jsonl --no-wait      # submit only; collect later by running it again`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := batch.Run(cmd.Context(), batch.Params{Path: args[0], RedisURL: o.redis.URL, Out: o.Out, Concurrency: o.Concurrency,
				NoWait: o.NoWait, ShowBar: o.Progress == "always" || (o.Progress == "auto" && isTerminal(env.Stderr)),
				WarnUnserved: func(c *enqueue.Client, perQueue map[string]int) { warnUnserved(env.Stderr, c, perQueue) },
				Stdin:        env.Stdin, Stdout: env.Stdout, Stderr: env.Stderr})
			var bad *batch.InputError
			if errors.As(err, &bad) {
				return &ExitError{Code: 2, Err: bad.Err}
			}
			return err
		},
	}
	o.redis.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.Out, "out", "-", "where to write outcome lines ('-' for stdout)")
	f.IntVar(&o.Concurrency, "submit-concurrency", enqueue.SubmitConcurrencyDefault, "Redis round trips in flight while submitting")
	f.BoolVar(&o.NoWait, "no-wait", false, "submit and print the job IDs without waiting for outcomes")
	f.StringVar(&o.Progress, "progress", "auto", "progress bar on stderr: auto (on a terminal), always or never")
	return cmd
}
