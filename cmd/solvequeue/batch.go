package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/clilog"
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
and the field, and nothing is submitted. A line without an "id" gets one derived
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
			return runBatch(cmd, env, o, args[0])
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

func runBatch(cmd *cobra.Command, env *Env, o *batchOptions, path string) error {
	var in io.Reader = env.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return usageError("%v", err)
		}
		defer f.Close()
		in = f
	}
	lines, err := enqueue.ReadJobs(in)
	var batchErr *enqueue.BatchError
	if errors.As(err, &batchErr) {
		return usageError("%s: %v", path, err)
	}
	if err != nil {
		return err
	}
	if len(lines) == 0 {
		return usageError("%s: no jobs in the file", path)
	}
	ctx := cmd.Context()
	rc, err := o.redis.open(ctx, o.Concurrency+8)
	if err != nil {
		return err
	}
	defer rc.Close()
	client, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	if err != nil {
		return err
	}
	showBar := o.Progress == "always" || (o.Progress == "auto" && isTerminal(env.Stderr))

	jobs := make([]enqueue.Job, len(lines))
	for i, l := range lines {
		jobs[i] = l.Job
	}
	bar := newBar(env.Stderr, showBar, len(jobs), "submitting")
	existing := 0
	results, err := client.SubmitMany(ctx, jobs, o.Concurrency, func(r enqueue.SubmitResult) {
		if r.Submitted.Existing {
			existing++
		}
		_ = bar.Add(1)
	})
	_ = bar.Finish()
	var notIn []string
	refs := make([]enqueue.JobRef, 0, len(results))
	lineOf := map[enqueue.JobRef]int{}
	for i, r := range results {
		if r.Err != nil || r.Submitted.ID == "" {
			notIn = append(notIn, fmt.Sprint(lines[i].Line))
			continue
		}
		ref := enqueue.JobRef{ID: r.Submitted.ID, Queue: r.Submitted.Queue}
		refs = append(refs, ref)
		lineOf[ref] = lines[i].Line
	}
	fmt.Fprintf(env.Stderr, "submitted %d of %d jobs (%d were submitted before: queued or already ended)\n", len(refs)-existing, len(lines), existing)
	if len(notIn) > 0 || err != nil {
		first := err
		for _, r := range results {
			if r.Err != nil {
				first = r.Err
				break
			}
		}
		return fmt.Errorf("%d job(s) were NOT submitted (lines %s): %v; the others are queued: run the same command again to submit the rest", len(notIn), strings.Join(notIn, ","), first)
	}
	perQueue := map[string]int{}
	for _, ref := range refs {
		perQueue[ref.Queue]++
	}
	warnUnserved(env.Stderr, client, perQueue)

	w := env.Stdout
	if o.Out != "-" {
		f, err := os.OpenFile(o.Out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return usageError("--out: %v", err)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	if o.NoWait {
		for _, ref := range refs {
			fmt.Fprintln(bw, ref.ID)
		}
		return nil
	}
	enc := json.NewEncoder(bw)
	// While waiting, a Redis restart is said once each way, not once per job or per retry.
	log := clilog.New(env.Stderr, clilog.Text, slog.LevelInfo)
	health := enqueue.NewRedisHealth(enqueue.RedisHealthParams{Redis: rc, Logger: log})
	health.Start(ctx)
	defer health.Shutdown()
	bar = newBar(env.Stderr, showBar, len(refs), "solving")
	counts := map[enqueue.State]int{}
	err = client.WaitMany(ctx, refs, 16, func(ref enqueue.JobRef, out enqueue.Outcome, err error) {
		if err != nil {
			out = enqueue.Outcome{ID: ref.ID, Queue: ref.Queue, State: stateUnknown,
				Error: &enqueue.ErrorInfo{ErrorCode: "NOT_FOUND", ErrorDescription: err.Error()}}
		}
		out.Line = lineOf[ref]
		counts[out.State]++
		_ = enc.Encode(out)
		_ = bar.Add(1)
	})
	_ = bar.Finish()
	fmt.Fprintf(env.Stderr, "outcomes: %s\n", summarize(counts))
	if err != nil {
		return fmt.Errorf("stopped waiting: %w (jobs keep running; run the same command again to collect the rest)", err)
	}
	if n := counts[stateUnknown]; n > 0 {
		return fmt.Errorf("the outcome of %s could not be read (state %q in its line): deleted, or past its retention", plural(n, "job"), stateUnknown)
	}
	return nil
}

// stateUnknown is the state of an outcome line whose job could not be found while waiting.
const stateUnknown enqueue.State = "unknown"

func summarize(counts map[enqueue.State]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[enqueue.State(k)]))
	}
	return strings.Join(parts, ", ")
}

func newBar(w io.Writer, show bool, n int, what string) *progressbar.ProgressBar {
	if !show {
		return progressbar.DefaultSilent(int64(n))
	}
	return progressbar.NewOptions(n, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("jobs"),
		progressbar.OptionThrottle(100_000_000), progressbar.OptionClearOnFinish())
}
