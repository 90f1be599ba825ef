package enqueue

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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

// BatchError lists every bad line of a batch file. Nothing of the file was submitted.
type BatchError struct{ Lines []*LineError }

func (e *BatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d bad line(s), nothing submitted:", len(e.Lines))
	for i, l := range e.Lines {
		if i == 20 {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Lines)-20)
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
func ReadJobs(r io.Reader) ([]LineJob, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLineBytes)
	var jobs []LineJob
	var bad []*LineError
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		job, err := ParseJob([]byte(text))
		if err == nil {
			err = job.Validate()
		}
		if err != nil {
			bad = append(bad, &LineError{Line: line, Err: err})
			continue
		}
		if job.ID == "" {
			job.ID = lineID(line, text)
		}
		jobs = append(jobs, LineJob{Line: line, Job: job})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			bad = append(bad, &LineError{Line: line + 1, Err: fmt.Errorf("is longer than %d bytes", MaxLineBytes)})
		} else {
			return nil, fmt.Errorf("read batch: %w", err)
		}
	}
	if len(bad) > 0 {
		return nil, &BatchError{Lines: bad}
	}
	return jobs, nil
}

func lineID(line int, text string) string {
	sum := sha256.Sum256([]byte(strconv.Itoa(line) + "\x00" + text))
	return "line-" + strconv.Itoa(line) + "-" + hex.EncodeToString(sum[:10])
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
	if concurrency <= 0 {
		concurrency = SubmitConcurrencyDefault
	}
	ac := c.batchClient()
	results := make([]SubmitResult, len(jobs))
	var mu sync.Mutex
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(concurrency, len(jobs)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				s, err := c.submitWithRetry(ctx, ac, jobs[i])
				results[i] = SubmitResult{Index: i, Submitted: s, Err: err}
				if onEach != nil {
					mu.Lock()
					onEach(results[i])
					mu.Unlock()
				}
			}
		}()
	}
	var err error
feed:
	for i := range jobs {
		select {
		case next <- i:
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	return results, err
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
	if concurrency <= 0 {
		concurrency = 16
	}
	pending := append([]JobRef(nil), refs...)
	delay := 200 * time.Millisecond
	for len(pending) > 0 {
		var mu sync.Mutex
		var still []JobRef
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
