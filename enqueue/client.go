package enqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/queuereg"
	"github.com/solvequeue/solvequeue/internal/rideout"
)

// Defaults for Config.
const (
	RetentionDefault      = jobwire.RetentionDefault
	AttemptTimeoutDefault = jobwire.AttemptTimeoutDefault
	BodyInlineMaxDefault  = 16 << 10
	// BlobTTLDefault is how long the image body of a job without a deadline is kept at most;
	// the worker deletes it when the job ends.
	BlobTTLDefault = jobwire.BlobTTLDefault
)

// ErrJobNotFound is returned by Status and Wait for an ID no queue holds.
var ErrJobNotFound = jobwire.ErrJobNotFound

// Config configures a Client.
type Config struct {
	// Redis is the connection to use; the Client does not close it.
	Redis redis.UniversalClient
	// Retention is how long a finished job's outcome stays readable. Defaults to 24 h.
	Retention time.Duration
	// AttemptTimeout bounds one attempt of a job in the worker. Defaults to 7 min (AnySolver
	// forgets a task 5 min after creation).
	AttemptTimeout time.Duration
	// BodyInlineMax is the largest task "body" carried inside the payload; larger bodies go to
	// their own Redis key. Defaults to 16 KiB.
	BodyInlineMax int
	// BlobTTL bounds how long the image body of a job without a deadline stays in Redis if no
	// worker deletes it (a job with a deadline keeps it until one attempt after the deadline).
	// Defaults to 7 days.
	BlobTTL time.Duration
	// Shared says the Client serves many callers at once, such as a server with a request per
	// goroutine (the gateway): the enqueues of SubmitJob and the reads of StatusIn and TaskTypeIn
	// then travel to Redis together through go-redis's autopipeliner, one pipeline per round
	// trip instead of one call per round trip. Each call still waits for its own answer. Defaults
	// to false: one round trip per call, the least latency for a lone caller.
	Shared bool
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Retention <= 0 {
		c.Retention = RetentionDefault
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = AttemptTimeoutDefault
	}
	if c.BodyInlineMax <= 0 {
		c.BodyInlineMax = BodyInlineMaxDefault
	}
	if c.BlobTTL <= 0 {
		c.BlobTTL = BlobTTLDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Client submits jobs and reads their outcomes. It is safe for concurrent use; share one.
type Client struct {
	cfg       Config
	rc        redis.UniversalClient
	asynq     *asynq.Client
	inspector *asynq.Inspector

	// With Config.Shared, over go-redis's autopipeliner: SubmitJob's client and the reader of
	// a job's state. Otherwise the plain ones above.
	submitter *asynq.Client
	reader    *asynq.Inspector
}

// NewClient returns a Client on cfg.Redis.
func NewClient(cfg Config) (*Client, error) {
	if cfg.Redis == nil {
		return nil, errors.New("enqueue: Config.Redis is required")
	}
	cfg = cfg.WithDefaults()
	c := &Client{
		cfg:       cfg,
		rc:        cfg.Redis,
		asynq:     asynq.NewClientFromRedisClient(cfg.Redis),
		inspector: asynq.NewInspectorFromRedisClient(cfg.Redis),
	}
	c.submitter, c.reader = c.asynq, c.inspector
	if cfg.Shared {
		if ap, err := cfg.Redis.AutoPipeline(); err == nil {
			c.submitter, c.reader = asynq.NewClientFromRedisClient(ap), asynq.NewInspectorFromRedisClient(ap)
		}
	}
	return c, nil
}

// Close releases the Client; the Redis connection given in Config stays open.
func (c *Client) Close() error { return nil }

// Retention returns how long a finished job's outcome stays readable.
func (c *Client) Retention() time.Duration { return c.cfg.Retention }

// Submitted says what Submit did with a job.
type Submitted struct {
	ID    string
	Queue string
	// Existing is true when a job with this ID was already in the queue (in any state): nothing
	// new was created and no AnySolver task will be paid for twice.
	Existing bool
}

// Submit validates job and puts it on its queue, returning its ID. Submitting an ID that is
// already in the queue is not an error: the existing job is kept and its ID returned.
func (c *Client) Submit(ctx context.Context, job Job) (string, error) {
	s, err := c.SubmitJob(ctx, job)
	return s.ID, err
}

// SubmitJob is Submit that also says whether the job already existed.
func (c *Client) SubmitJob(ctx context.Context, job Job) (Submitted, error) {
	if err := job.Validate(); err != nil {
		return Submitted{}, err
	}
	return c.submitValidated(ctx, c.submitter, job)
}

// prepare builds the asynq task of a validated job, storing a large body under its own key; the
// key is returned with created true when prepare wrote it (see releaseBody).
func (c *Client) prepare(ctx context.Context, job Job) (*asynq.Task, Submitted, string, bool, error) {
	now := c.cfg.Now()
	sub := Submitted{ID: job.ID, Queue: job.Queue}
	if sub.ID == "" {
		sub.ID = uuid.NewString()
	}
	if sub.Queue == "" {
		sub.Queue = DefaultQueue
	}
	deadline, err := ParseDeadline(job.Deadline, now)
	if err != nil {
		return nil, Submitted{}, "", false, err
	}
	job.Task = jobwire.AnySolverTask(job.Task) // a client's name for the type, as AnySolver knows it
	p := jobwire.Payload{V: jobwire.PayloadVersion, Task: job.Task, Provider: job.Provider, Providers: job.Providers, Settings: job.Settings,
		Deadline: deadline, MaxRetries: job.MaxRetries, SubmittedAt: now.UTC(),
		CallbackURL: job.CallbackURL, KeyName: job.KeyName, GatewayTaskID: job.GatewayTaskID}
	var created bool
	if body, ok := job.Task["body"].(string); ok && len(body) > c.cfg.BodyInlineMax {
		key := keys.Body(sub.Queue, sub.ID, body)
		if created, err = c.putBody(ctx, key, body, c.bodyTTL(now, deadline)); err != nil {
			return nil, Submitted{}, "", false, fmt.Errorf("job %s: %w", sub.ID, err)
		}
		p.Task = maps.Clone(job.Task)
		delete(p.Task, "body")
		p.BodyRef = key
	}
	data, err := json.Marshal(p)
	if err != nil {
		if created {
			c.releaseBody(ctx, sub.Queue, sub.ID, p.BodyRef, err)
		}
		return nil, Submitted{}, "", false, fmt.Errorf("encode job %s: %w", sub.ID, err)
	}
	task := asynq.NewTask(jobwire.TaskType, data,
		asynq.Queue(sub.Queue), asynq.TaskID(sub.ID), asynq.MaxRetry(jobwire.AsynqMaxRetryDefault),
		asynq.Timeout(c.cfg.AttemptTimeout), asynq.Retention(c.cfg.Retention))
	return task, sub, p.BodyRef, created, nil
}

// Status returns the job's current state and, once it ended, its outcome. The queue is looked
// up when not given ("" searches every queue).
func (c *Client) Status(ctx context.Context, id string) (Outcome, error) {
	return c.StatusIn(ctx, "", id)
}

// StatusIn is Status for a job known to be in queue (faster: no search).
func (c *Client) StatusIn(ctx context.Context, queue, id string) (Outcome, error) {
	queues := []string{queue}
	if queue == "" {
		qs, err := c.inspector.Queues()
		if err != nil {
			return Outcome{}, fmt.Errorf("list queues: %w", err)
		}
		queues = queuereg.JobQueues(qs)
	}
	for _, q := range queues {
		info, err := c.reader.GetTaskInfo(q, id)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			continue
		}
		if err != nil {
			return Outcome{}, fmt.Errorf("read job %s: %w", id, err)
		}
		return jobwire.OutcomeOf(info), nil
	}
	if dl, err := deadletter.Get(ctx, c.rc, queue, id); err == nil {
		return dl.Outcome(), nil
	}
	return Outcome{}, fmt.Errorf("%w: %q (it may never have been submitted, or its outcome outlived its retention)", ErrJobNotFound, id)
}

// TaskTypeIn returns the AnySolver task type of a job in queue (its payload's "type"), read the
// way StatusIn reads the job: asynq's task, then the dead-letter record.
func (c *Client) TaskTypeIn(ctx context.Context, queue, id string) (string, error) {
	info, err := c.reader.GetTaskInfo(queue, id)
	var payload []byte
	switch {
	case err == nil:
		payload = info.Payload
	case errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound):
		dl, err := deadletter.Get(ctx, c.rc, queue, id)
		if err != nil {
			return "", err
		}
		payload = dl.Payload
	default:
		return "", fmt.Errorf("read job %s: %w", id, err)
	}
	var p jobwire.Payload
	_ = json.Unmarshal(payload, &p)
	return p.TaskType(), nil
}

// Wait polls the job until it reaches a terminal state or ctx ends.
func (c *Client) Wait(ctx context.Context, id string) (Outcome, error) {
	return c.WaitIn(ctx, "", id)
}

// WaitIn is Wait for a job known to be in queue.
func (c *Client) WaitIn(ctx context.Context, queue, id string) (Outcome, error) {
	delay := 100 * time.Millisecond
	for {
		out, err := c.StatusIn(ctx, queue, id)
		if err != nil && !isTransient(err) {
			return out, err
		}
		if err == nil && out.State.Terminal() {
			return out, nil
		}
		if queue == "" && err == nil {
			queue = out.Queue
		}
		select {
		case <-ctx.Done():
			return out, fmt.Errorf("wait for job %s: %w", id, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
}

// isTransient reports whether a Status error may pass by itself: Redis not answering
// (restarting, failing over), as rideout.Unreachable reads it.
func isTransient(err error) bool {
	return !errors.Is(err, ErrJobNotFound) && rideout.Unreachable(err)
}
