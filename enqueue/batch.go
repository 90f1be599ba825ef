package enqueue

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
)

// SubmitConcurrencyDefault is how many jobs SubmitMany keeps in flight to Redis at once. They
// share pipelined round trips (see SubmitMany), so more in flight means fuller pipelines: on a
// 2-core machine 256 submitted about 15 % faster than 64, and more gained little.
const SubmitConcurrencyDefault = 256

// MaxLineBytes is the longest job line ReadJobs accepts (an image body inline makes lines long).
const MaxLineBytes = 16 << 20

// LineJob is a job read from a batch file, with where it came from.
type LineJob struct {
	Line int // 1-based line number
	Job  Job
}

// LineError is a bad line of a batch file.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return "line " + strconv.Itoa(e.Line) + ": " + e.Err.Error() }
func (e *LineError) Unwrap() error { return e.Err }

// MaxBatchErrors is how many bad lines a BatchError lists; the others are counted (More).
const MaxBatchErrors = 1000

// BatchError lists the bad lines of a batch file (the first MaxBatchErrors; More counts the rest).
// Nothing of the file was submitted.
type BatchError struct {
	Lines []*LineError
	More  int
}

func (e *BatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d bad line(s), nothing submitted:", len(e.Lines)+e.More)
	for i, l := range e.Lines {
		if i == 20 {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Lines)+e.More-20)
			break
		}
		b.WriteString("\n  " + l.Error())
	}
	return b.String()
}

// ReadJobs reads a JSON-lines batch and validates every line before returning, so that a bad
// file is refused whole. Blank lines and lines starting with '#' are skipped. A job without an ID
// gets one derived from its line number and text, so that submitting the same file again finds
// the jobs already in Redis instead of creating new ones.
//
// ReadJobs holds every job in memory; ScanJobs reads a file of any size one line at a time.
func ReadJobs(r io.Reader) ([]LineJob, error) {
	var jobs []LineJob
	err := ScanJobs(r, func(l LineJob) error {
		jobs = append(jobs, l)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return jobs, nil
}

// ScanJobs reads a JSON-lines batch as ReadJobs does, one line at a time: fn gets each good job
// as it is read (its ID derived when the line has none), so memory holds one line whatever the
// file's size. Bad lines do not stop the reading; once the input ends they are returned as a
// *BatchError, and fn has then seen the good lines of a bad file: to submit nothing of a bad
// file, scan it once to check it and again to submit (the CLI's batch does). An error from fn
// stops the scan and is returned as it is.
func ScanJobs(r io.Reader, fn func(LineJob) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLineBytes)
	bad := &BatchError{}
	addBad := func(le *LineError) {
		if len(bad.Lines) < MaxBatchErrors {
			bad.Lines = append(bad.Lines, le)
		} else {
			bad.More++
		}
	}
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		job, err := ParseJob(text)
		if err == nil {
			err = job.Validate()
		}
		if err != nil {
			addBad(&LineError{Line: line, Err: err})
			continue
		}
		if job.ID == "" {
			job.ID = lineID(line, text)
		}
		if err := fn(LineJob{Line: line, Job: job}); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if !errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("read batch: %w", err)
		}
		addBad(&LineError{Line: line + 1, Err: fmt.Errorf("is longer than %d bytes", MaxLineBytes)})
	}
	if len(bad.Lines) > 0 {
		return bad
	}
	return nil
}

func lineID(line int, text []byte) string {
	h := sha256.New()
	h.Write([]byte(strconv.Itoa(line) + "\x00"))
	h.Write(text)
	return "line-" + strconv.Itoa(line) + "-" + hex.EncodeToString(h.Sum(nil)[:10])
}

// SubmitResult is what happened to one job of SubmitMany.
type SubmitResult struct {
	Index     int // position in the input
	Submitted Submitted
	Err       error
}

// SubmitMany validates every job, then submits them from concurrency goroutines whose enqueues
// share pipelined round trips to Redis (asynq v0.26 has no bulk enqueue; each job is asynq's
// own enqueue, its script and task format, and only the connection is shared: see batchClient).
// It calls onEach (from several goroutines, never at once) as each job goes in, and returns the
// results in input order. Validation errors refuse the whole batch before anything is sent.
func (c *Client) SubmitMany(ctx context.Context, jobs []Job, concurrency int, onEach func(SubmitResult)) ([]SubmitResult, error) {
	for i, j := range jobs {
		if err := j.Validate(); err != nil {
			return nil, fmt.Errorf("job %d: %w (nothing submitted)", i, err)
		}
	}
	results := make([]SubmitResult, len(jobs))
	err := c.SubmitSeq(ctx, slices.All(jobs), concurrency, func(r SubmitResult) {
		results[r.Index] = r
		if onEach != nil {
			onEach(r)
		}
	})
	return results, err
}

// SubmitInFlightBytes bounds the jobs SubmitSeq holds in flight at once, by MaxJobBytes' count:
// a stream of large jobs (images) is submitted a few at a time, small ones as concurrency allows.
const SubmitInFlightBytes = 8 << 20

// SubmitSeq submits the jobs of a sequence as SubmitMany does, holding only those in flight
// (at most concurrency jobs and SubmitInFlightBytes of them; a larger job goes alone), for a
// stream too large to hold, such as a big batch file read by ScanJobs. The sequence's keys are
// the results' Index (SubmitMany gives positions, the CLI line numbers). Each job is validated
// as it comes and a bad one reported through onEach with its error, not submitted: to refuse a
// stream whole, check it first. onEach is called from several goroutines, never at once. It
// returns when the sequence ends and every submit has returned, or ctx's error once ctx ends
// (jobs not yet taken from the sequence are then not submitted, nor reported).
func (c *Client) SubmitSeq(ctx context.Context, jobs iter.Seq2[int, Job], concurrency int, onEach func(SubmitResult)) error {
	if concurrency <= 0 {
		concurrency = SubmitConcurrencyDefault
	}
	type item struct {
		key  int
		job  Job
		size int
	}
	ac := c.batchClient()
	budget := newByteBudget(SubmitInFlightBytes)
	var mu sync.Mutex
	report := func(r SubmitResult) {
		if onEach != nil {
			mu.Lock()
			onEach(r)
			mu.Unlock()
		}
	}
	next := make(chan item)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range next {
				var s Submitted
				err := it.job.Validate()
				if err == nil {
					// A job handed out as ctx ended is not sent: the autopipeliner may send a
					// command whose context is canceled already.
					err = ctx.Err()
				}
				if err == nil {
					s, err = c.submitWithRetry(ctx, ac, it.job)
				}
				budget.release(it.size)
				report(SubmitResult{Index: it.key, Submitted: s, Err: err})
			}
		}()
	}
	var err error
	for key, job := range jobs {
		size := job.size(SubmitInFlightBytes)
		if err = budget.acquire(ctx, size); err != nil {
			break
		}
		select {
		case next <- item{key: key, job: job, size: size}:
			continue
		case <-ctx.Done():
			err = ctx.Err()
		}
		budget.release(size)
		break
	}
	close(next)
	wg.Wait()
	return err
}

// byteBudget bounds the bytes in flight: acquire waits until n more fit, or until nothing is in
// flight (so one job larger than the budget still goes, alone).
type byteBudget struct {
	mu    sync.Mutex
	used  int
	limit int
	freed chan struct{} // closed and replaced at each release
}

func newByteBudget(limit int) *byteBudget {
	return &byteBudget{limit: limit, freed: make(chan struct{})}
}

func (b *byteBudget) acquire(ctx context.Context, n int) error {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.limit {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *byteBudget) release(n int) {
	b.mu.Lock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// batchClient returns the asynq client SubmitMany enqueues with: one over go-redis's
// autopipeliner of the Client's connection, so that the jobs its goroutines enqueue at the same
// time travel to Redis together, one pipeline per round trip instead of one job per round trip.
// Each job is still asynq's own enqueue (its script, its task format, its answer, a conflict
// reported per job): only the transport is shared. A connection without an autopipeliner (a
// Ring) gets the plain client.
func (c *Client) batchClient() *asynq.Client {
	ap, err := c.rc.AutoPipeline()
	if err != nil {
		return c.asynq
	}
	return asynq.NewClientFromRedisClient(ap)
}

// submitValidated puts a job that passed Validate on its queue through ac: SubmitJob without
// validating again. A large image body written for a job that did not go in is deleted again.
func (c *Client) submitValidated(ctx context.Context, ac *asynq.Client, job Job) (Submitted, error) {
	task, sub, bodyKey, created, err := c.prepare(ctx, job)
	if err != nil {
		return Submitted{}, err
	}
	_, err = ac.EnqueueContext(ctx, task)
	if err != nil && bodyKey != "" {
		// The job did not go in: its body must not stay behind (one that another submit of the
		// same job wrote is left to that job).
		if created || errors.Is(err, asynq.ErrTaskIDConflict) {
			c.releaseBody(ctx, sub.Queue, sub.ID, bodyKey, err)
		}
	}
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict):
		sub.Existing = true
		return sub, nil
	case err != nil:
		return Submitted{}, fmt.Errorf("submit job %s: %w", sub.ID, err)
	}
	return sub, nil
}

// submitWithRetry retries a submit through a short Redis outage (a restart), with backoff.
func (c *Client) submitWithRetry(ctx context.Context, ac *asynq.Client, job Job) (Submitted, error) {
	delay := 100 * time.Millisecond
	deadline := time.Now().Add(time.Minute)
	for {
		s, err := c.submitValidated(ctx, ac, job)
		if err == nil || !isTransient(err) || time.Now().After(deadline) {
			return s, err
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// JobRef names a submitted job.
type JobRef struct {
	ID    string
	Queue string
}

// WaitMany waits for every job to reach a terminal state, calling onDone (never concurrently)
// as each one ends, in the order they end. It polls with bounded concurrency and backs off while
// nothing changes. A job that cannot be found is reported with an ErrJobNotFound error.
func (c *Client) WaitMany(ctx context.Context, refs []JobRef, concurrency int, onDone func(JobRef, Outcome, error)) error {
	return c.WaitManyOr(ctx, refs, concurrency, nil, onDone)
}

// WaitManyOr is WaitMany that first offers the jobs a polling round could not find to
// onMissing (called between rounds, never concurrently with onDone): the jobs it returns (it
// submitted them again, say: a Redis failover loses the last writes before the primary died)
// are waited for further; the others are reported to onDone with an ErrJobNotFound error. A nil
// onMissing takes none.
func (c *Client) WaitManyOr(ctx context.Context, refs []JobRef, concurrency int, onMissing func([]JobRef) []JobRef,
	onDone func(JobRef, Outcome, error)) error {
	if concurrency <= 0 {
		concurrency = 16
	}
	pending := append([]JobRef(nil), refs...)
	delay := 200 * time.Millisecond
	for len(pending) > 0 {
		var mu sync.Mutex
		var still, missing []JobRef
		var missingErr []error
		sem := make(chan struct{}, concurrency)
		var wg sync.WaitGroup
		for _, ref := range pending {
			sem <- struct{}{}
			wg.Add(1)
			go func(ref JobRef) {
				defer func() { <-sem; wg.Done() }()
				out, err := c.StatusIn(ctx, ref.Queue, ref.ID)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil && isTransient(err):
					still = append(still, ref)
				case errors.Is(err, ErrJobNotFound) && onMissing != nil:
					missing, missingErr = append(missing, ref), append(missingErr, err)
				case err != nil:
					onDone(ref, out, err)
				case out.State.Terminal():
					onDone(ref, out, nil)
				default:
					still = append(still, ref)
				}
			}(ref)
		}
		wg.Wait()
		if len(missing) > 0 {
			kept := onMissing(missing)
			for i, ref := range missing {
				if slices.Contains(kept, ref) {
					still = append(still, ref)
				} else {
					onDone(ref, Outcome{}, missingErr[i])
				}
			}
		}
		if len(still) == len(pending) {
			delay = min(delay*2, 2*time.Second)
		} else {
			delay = 200 * time.Millisecond
		}
		pending = still
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
	return nil
}
