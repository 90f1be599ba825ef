// Package batch is `solvequeue batch`: a JSON-lines file of jobs checked whole, submitted a
// bounded number at a time, waited for, and written back as one outcome line per job. The
// command's flags are the binary's; the reading, submitting and collecting are here.
package batch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/schollz/progressbar/v3"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/clilog"
	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/words"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/redisconn"
)

// Params configure a batch run.
type Params struct {
	// Path is the batch file, "-" for Stdin.
	Path string
	// RedisURL is the Redis the jobs go to.
	RedisURL string
	// Out is where outcome lines go, "-" for Stdout.
	Out string
	// Concurrency is how many Redis round trips are in flight while submitting.
	Concurrency int
	// NoWait submits and prints the job IDs without waiting for outcomes.
	NoWait bool
	// ShowBar shows progress bars on Stderr.
	ShowBar bool
	// WarnUnserved, when set, is called once every job is submitted with how many jobs went to
	// each queue, to warn about the queues no running worker serves.
	WarnUnserved func(client *enqueue.Client, perQueue map[string]int)
	// Stdin, Stdout and Stderr are the command's streams.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// InputError is a bad file or flag: nothing was submitted (the binary's exit status 2).
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

func inputError(format string, args ...any) error {
	return &InputError{Err: fmt.Errorf(format, args...)}
}

// Run checks the whole batch, submits it, and unless NoWait writes one outcome line per job as
// each ends. A failed or dead job is an outcome, not an error of the run.
func Run(ctx context.Context, o Params) error {
	path := o.Path
	src, closeSrc, err := openBatch(o.Stdin, path)
	if err != nil {
		return err
	}
	defer closeSrc()
	// First pass: check every line, holding none, so that a bad file submits nothing.
	total := 0
	err = enqueue.ScanJobs(src, func(enqueue.LineJob) error { total++; return nil })
	var batchErr *enqueue.BatchError
	if errors.As(err, &batchErr) {
		return inputError("%s: %v", path, err)
	}
	if err != nil {
		return err
	}
	if total == 0 {
		return inputError("%s: no jobs in the file", path)
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("%s: read it again: %w", path, err)
	}
	rc, err := redisconn.Open(ctx, o.RedisURL, o.Concurrency+8)
	if err != nil {
		return err
	}
	defer rc.Close()
	client, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	if err != nil {
		return err
	}
	showBar := o.ShowBar

	// Second pass: submit as the file is read again, a bounded number of jobs in flight.
	bar := newBar(o.Stderr, showBar, total, "submitting")
	existing := 0
	var notIn []int
	var firstErr error
	refs := make([]enqueue.JobRef, 0, total)
	lineOf := map[enqueue.JobRef]int{}
	jobs := func(yield func(int, enqueue.Job) bool) {
		_ = enqueue.ScanJobs(src, func(l enqueue.LineJob) error {
			if !yield(l.Line, l.Job) {
				return errStopScan
			}
			return nil
		})
	}
	err = client.SubmitSeq(ctx, jobs, o.Concurrency, func(r enqueue.SubmitResult) {
		_ = bar.Add(1)
		if r.Err != nil || r.Submitted.ID == "" {
			notIn = append(notIn, r.Index)
			if firstErr == nil {
				firstErr = r.Err
			}
			return
		}
		if r.Submitted.Existing {
			existing++
		}
		ref := enqueue.JobRef{ID: r.Submitted.ID, Queue: r.Submitted.Queue}
		refs = append(refs, ref)
		lineOf[ref] = r.Index
	})
	_ = bar.Finish()
	fmt.Fprintf(o.Stderr, "submitted %d of %d jobs (%d were submitted before: queued or already ended)\n", len(refs)-existing, total, existing)
	if len(notIn) > 0 || len(refs)+len(notIn) < total || err != nil {
		if firstErr == nil {
			firstErr = err
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("%s changed while it was read", path)
		}
		sort.Ints(notIn)
		lines := make([]string, len(notIn))
		for i, n := range notIn {
			lines[i] = strconv.Itoa(n)
		}
		return fmt.Errorf("%d job(s) were NOT submitted (lines %s): %v; the others are queued: run the same command again to submit the rest",
			total-len(refs), strings.Join(lines, ","), firstErr)
	}
	perQueue := map[string]int{}
	for _, ref := range refs {
		perQueue[ref.Queue]++
	}
	if o.WarnUnserved != nil {
		o.WarnUnserved(client, perQueue)
	}

	w := o.Stdout
	if o.Out != "-" {
		f, err := os.OpenFile(o.Out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return inputError("--out: %v", err)
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
	log := clilog.New(o.Stderr, clilog.Text, slog.LevelInfo)
	health := redisconn.NewHealth(redisconn.HealthParams{Redis: rc, Logger: log})
	health.Start(ctx)
	defer health.Shutdown()
	bar = newBar(o.Stderr, showBar, len(refs), "solving")
	counts := map[enqueue.State]int{}
	// A job missing while we wait was lost by a Redis failover (asynchronous replication loses
	// the last writes before a primary dies) or deleted: it is submitted again, once, under its
	// ID. Its paid AnySolver task, if it had one, is on the replica (the worker waits for one to
	// hold it), so such a job is never missing.
	resubmitted := map[enqueue.JobRef]bool{}
	onMissing := func(missing []enqueue.JobRef) []enqueue.JobRef {
		var again []enqueue.JobRef
		for _, ref := range missing {
			if !resubmitted[ref] {
				resubmitted[ref] = true
				again = append(again, ref)
			}
		}
		if len(again) == 0 {
			return nil
		}
		fmt.Fprintf(o.Stderr, "%s missing from Redis while waiting (lost by a failover, or deleted): submitting again under the same IDs\n",
			words.Plural(len(again), "job"))
		if err := resubmit(ctx, client, src, again, lineOf); err != nil {
			fmt.Fprintf(o.Stderr, "could not submit them again: %v\n", err)
			return nil
		}
		return again
	}
	err = client.WaitManyOr(ctx, refs, 16, onMissing, func(ref enqueue.JobRef, out enqueue.Outcome, err error) {
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
	fmt.Fprintf(o.Stderr, "outcomes: %s\n", summarize(counts))
	if err != nil {
		return fmt.Errorf("stopped waiting: %w (jobs keep running; run the same command again to collect the rest)", err)
	}
	if n := counts[stateUnknown]; n > 0 {
		return fmt.Errorf("the outcome of %s could not be read (state %q in its line): deleted, or past its retention", words.Plural(n, "job"), stateUnknown)
	}
	return nil
}

// resubmit submits the jobs of refs again, read anew from their lines of the batch.
func resubmit(ctx context.Context, client *enqueue.Client, src io.ReadSeeker, refs []enqueue.JobRef, lineOf map[enqueue.JobRef]int) error {
	want := make(map[int]enqueue.JobRef, len(refs))
	for _, ref := range refs {
		want[lineOf[ref]] = ref
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read the batch again: %w", err)
	}
	return enqueue.ScanJobs(src, func(l enqueue.LineJob) error {
		ref, ok := want[l.Line]
		if !ok || l.Job.ID != ref.ID {
			return nil
		}
		if _, err := client.SubmitJob(ctx, l.Job); err != nil {
			return fmt.Errorf("submit line %d again: %w", l.Line, err)
		}
		return nil
	})
}

// errStopScan stops a ScanJobs whose consumer wants no more jobs.
var errStopScan = errors.New("stop")

// openBatch opens a batch for two passes (check, then submit). A regular file is read twice; a
// stream (stdin, a pipe) is spilled to a temporary file while it is read, so that memory holds
// a line at a time whatever the batch's size. The spill is removed by the returned func.
func openBatch(stdin io.Reader, path string) (io.ReadSeeker, func(), error) {
	in := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, inputError("%v", err)
		}
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			return f, func() { _ = f.Close() }, nil
		}
		in = f
		defer f.Close()
	}
	spill, err := os.CreateTemp("", "solvequeue-batch-*.jsonl")
	if err != nil {
		return nil, nil, fmt.Errorf("spill the batch to a temporary file: %w (set TMPDIR, or give a file path)", err)
	}
	cleanup := func() { _ = spill.Close(); _ = os.Remove(spill.Name()) }
	if _, err := io.Copy(spill, in); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("read the batch: %w", err)
	}
	if _, err := spill.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("read the spilled batch: %w", err)
	}
	return spill, cleanup, nil
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
