// Package callback delivers a job's outcome to its callbackUrl: a delivery is an asynq task in a
// queue of its own (Queue), scheduled once per outcome when the job ends, POSTed signed
// (SignatureHeader, over a timestamp, a delivery ID and the body, under a secret per gateway key)
// and retried with backoff for a window after the job ended.
//
// It does not decide when a job has ended (the attempt machine does and calls Schedule) nor
// which addresses are forbidden (package enqueue/gateway says).
package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/metrics"
	"github.com/solvequeue/solvequeue/internal/redact"
)

// TaskType is the asynq task type of a callback delivery. It is queued in Queue
// when the job ends, so deliveries survive a worker restart like jobs do.
const TaskType = "solvequeue:callback"

// Queue is the asynq queue callback deliveries wait in; every worker serves it beside
// its job queues. A delivery has a queue of its own so that what holds solving never holds it:
// the account breaker and the spend caps pause job queues only, and a delivery is not paid. The
// name holds a '~', which no job queue's name may (queuereg.ValidName), so no user's queue
// can be it and nothing that walks the job queues (dead letters, failed jobs, the breaker's
// pauses, the console) takes it for one.
const Queue = "solvequeue~callbacks"

// Callback delivery limits.
const (
	// Timeout bounds one delivery, answer included.
	Timeout = 5 * time.Second
	// WindowDefault is how long a delivery is retried after the job ended.
	WindowDefault = time.Hour
	// BackoffDefault is the wait before a failed delivery's first retry; it doubles
	// with each try (5 s, 10 s, 20 s, ...) up to callbackMaxDelay, with jitter.
	BackoffDefault   = 5 * time.Second
	callbackMaxDelay = 10 * time.Minute
	// callbackMaxRetry is asynq's retry count for a delivery; the window ends it first.
	callbackMaxRetry = 100
	// callbackAnswerLimit is how much of a receiver's answer is read (and quoted in the log).
	callbackAnswerLimit = 512
)

// Payload is a delivery waiting in Redis: where to POST, what, when the job ended, the
// delivery's ID and the gateway key whose secret signs it (its name: no secret is ever stored).
// Each outcome of a job (the first, then one per redrive) has a delivery of its own.
type Payload struct {
	URL        string          `json:"url"`
	Body       json.RawMessage `json:"body"`
	EndedAt    time.Time       `json:"endedAt"`
	DeliveryID string          `json:"deliveryId,omitempty"` // "": the asynq task's ID
	KeyName    string          `json:"keyName,omitempty"`    // "": not a gateway job
}

// callbackAnswer is what a callbackUrl receives: the job's getTaskResult answer with its taskId
// (when it came through the gateway), its job id and the outcome's sequence number. A job that
// came through the gateway is answered as the gateway answers its getTaskResult, in the
// anti-captcha dialect (gateway.DialectResultAnswer); any other job with the outcome's own code.
type callbackAnswer struct {
	gateway.Answer
	// OutcomeSeq numbers the job's outcomes: 1 for its first, one more for each redrive
	// (jobwire.Payload.OutcomeSeq). Deliveries of two outcomes may arrive in any order; the
	// highest number is the latest.
	OutcomeSeq int `json:"outcomeSeq"`
}

// callbackBody is the body of the callback of the job's outcome rec.
func callbackBody(jobID string, p jobwire.Payload, rec jobwire.Record) ([]byte, error) {
	answer := gateway.ResultAnswer
	if p.GatewayTaskID != 0 {
		answer = gateway.DialectResultAnswer
	}
	a := answer(enqueue.Outcome{ID: jobID, State: rec.State, Solution: rec.Solution, Error: rec.Error,
		Attempts: rec.Attempts, Cost: rec.Cost, SubmittedAt: p.SubmittedAt, FinishedAt: rec.FinishedAt})
	a.TaskID, a.JobID = p.GatewayTaskID, jobID
	return json.Marshal(callbackAnswer{Answer: a, OutcomeSeq: p.OutcomeSeq()})
}

// callbackTaskID is the asynq task id of the delivery of the job's outcome number seq: one per
// outcome, so that a redriven job's delivery never meets the one of an earlier outcome still
// being retried, while the same outcome scheduled twice (a redelivered job) is one delivery. The
// sequence number follows the last '-', which a number never holds, so no two jobs share one.
func callbackTaskID(jobID string, seq int) string { return "cb-" + jobID + "-" + strconv.Itoa(seq) }

// Params configure Callbacks.
type Params struct {
	Redis        redis.UniversalClient
	Secret       string            // signs deliveries of jobs of no gateway key; "" sends them unsigned
	KeySecrets   map[string]string // a gateway key's name to its own secret; any other key's is KeySecret(Secret, name)
	Window       time.Duration     // how long a delivery is retried after its job ended
	Backoff      time.Duration     // the wait before a failed delivery's first retry
	Observer     metrics.Observer  // told each delivery's result when it is a metrics.CallbackObserver
	Log          *slog.Logger
	Now          func() time.Time
	AllowPrivate bool // lets deliveries reach loopback, private and link-local addresses
}

// Callbacks schedules deliveries when jobs end and performs them.
type Callbacks struct {
	asynq        *asynq.Client
	http         *http.Client
	secret       []byte
	keySecrets   map[string]string
	window       time.Duration
	backoff      time.Duration
	observer     metrics.Observer
	log          *slog.Logger
	now          func() time.Time
	allowPrivate bool
}

// New returns Callbacks that queue deliveries on p.Redis.
func New(p Params) *Callbacks {
	c := &Callbacks{asynq: asynq.NewClientFromRedisClient(p.Redis), secret: []byte(p.Secret),
		keySecrets: maps.Clone(p.KeySecrets), window: p.Window, backoff: p.Backoff, observer: p.Observer, log: p.Log, now: p.Now, allowPrivate: p.AllowPrivate}
	dialer := &net.Dialer{Timeout: Timeout}
	if !p.AllowPrivate {
		// Judged on the address being connected to, after DNS: a name that resolved to a public
		// address for a check and to a private one for the connection cannot slip by.
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || gateway.ForbiddenCallbackAddr(ap.Addr()) {
				return &refusedAddrError{addr: address}
			}
			return nil
		}
	}
	c.http = &http.Client{
		Timeout: Timeout,
		Transport: &http.Transport{
			Proxy:                 nil, // a proxy would connect for us, past the address check
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   Timeout,
			ResponseHeaderTimeout: Timeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       time.Minute,
		},
		// A redirect is an answer, never followed: it could lead anywhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c
}

// refusedAddrError is a callback address outside what callbacks may reach.
type refusedAddrError struct{ addr string }

func (e *refusedAddrError) Error() string {
	return fmt.Sprintf("callback address %s is loopback, private or link-local: refused (allow with --callback-allow-private)", e.addr)
}

// Schedule queues the callback of the job id that ended with the outcome rec, in Queue, once
// per outcome (the task id is the job's and the outcome's sequence number: callbackTaskID); only
// a job with a callbackUrl schedules anything. p is the job's payload, or its zero value when it
// was not read (a redelivered job), raw is then decoded. An error hands the job back to asynq,
// whose next run of it replays the recorded outcome and schedules again: at least once.
func (c *Callbacks) Schedule(ctx context.Context, id string, p jobwire.Payload, raw []byte, rec jobwire.Record) error {
	if p.V == 0 {
		// A redelivered job's payload was not read: its outcome was.
		decoded, err := jobwire.DecodePayload(raw)
		if err != nil {
			return nil
		}
		p = decoded
	}
	if p.CallbackURL == "" {
		return nil
	}
	body, err := callbackBody(id, p, rec)
	if err != nil {
		return fmt.Errorf("encode the callback of job %s: %w", id, err)
	}
	seq := p.OutcomeSeq()
	data, err := json.Marshal(Payload{URL: p.CallbackURL, Body: body, EndedAt: rec.FinishedAt,
		DeliveryID: deliveryID(id, seq, rec.FinishedAt), KeyName: p.KeyName})
	if err != nil {
		return fmt.Errorf("encode the callback of job %s: %w", id, err)
	}
	task := asynq.NewTask(TaskType, data, asynq.Queue(Queue), asynq.TaskID(callbackTaskID(id, seq)),
		asynq.MaxRetry(callbackMaxRetry), asynq.Timeout(2*Timeout))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := c.asynq.EnqueueContext(ctx, task); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("queue the callback of job %s: %w", id, err)
	}
	return nil
}

// ProcessTask delivers one callback: a signed POST of the stored body. A 2xx answer delivers
// it; anything else (another status, a redirect, a timeout, a refused connection) is tried again
// with backoff until the window after the job's end has passed (a *RetryError says when); a
// forbidden address is refused for good.
func (c *Callbacks) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p Payload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.URL == "" {
		c.done("abandoned")
		return fmt.Errorf("callback task is unreadable: %w", asynq.RevokeTask)
	}
	id, _ := asynq.GetTaskID(ctx)
	if p.DeliveryID == "" {
		p.DeliveryID = id
	}
	err := c.deliver(ctx, p)
	if err == nil {
		c.done("delivered")
		return nil
	}
	var refused *refusedAddrError
	if errors.As(err, &refused) {
		c.done("refused")
		c.log.Warn("callback refused: its address is not public", "task_id", id, "err", err)
		return fmt.Errorf("%w: %w", err, asynq.RevokeTask)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	delay := min(c.backoff<<min(retried, 16), callbackMaxDelay)
	delay += time.Duration(rand.Float64() * float64(delay) / 4)
	if c.now().Add(delay).Sub(p.EndedAt) > c.window {
		c.done("abandoned")
		c.log.Error("callback abandoned: not delivered within the window after the job ended",
			"task_id", id, "window", c.window, "tries", retried+1, "err", err)
		return fmt.Errorf("%w: %w", err, asynq.RevokeTask)
	}
	c.done("retried")
	c.log.Info("callback not delivered; trying again", "task_id", id, "in", delay.Round(time.Second), "err", err)
	return &RetryError{Err: err, Delay: delay}
}

// RetryError is a delivery to be tried again after Delay, spending one of its retries.
type RetryError struct {
	Err   error
	Delay time.Duration
}

func (e *RetryError) Error() string { return e.Err.Error() }

// Unwrap gives errors.Is and errors.As the delivery's error.
func (e *RetryError) Unwrap() error { return e.Err }

func (c *Callbacks) deliver(ctx context.Context, p Payload) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(p.Body))
	if err != nil {
		return fmt.Errorf("callback URL: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "solvequeue-callback")
	ts := c.now().Unix()
	req.Header.Set(TimestampHeader, strconv.FormatInt(ts, 10))
	req.Header.Set(DeliveryHeader, p.DeliveryID)
	if secret := c.secretFor(p.KeyName); len(secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(secret, ts, p.DeliveryID, p.Body))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", redact.URL(p.URL), unwrapURLError(err))
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, callbackAnswerLimit))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: HTTP %d: %q", redact.URL(p.URL), resp.StatusCode, answer)
	}
	return nil
}

// unwrapURLError drops net/http's *url.Error wrapper, which repeats the URL (password and all).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (c *Callbacks) done(result string) {
	if o, ok := c.observer.(metrics.CallbackObserver); ok {
		o.CallbackDone(result)
	}
}
