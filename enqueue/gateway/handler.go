package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/balance"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/ledger"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/internal/quota"
	"github.com/solvequeue/solvequeue/internal/taskid"
)

// Defaults for Config.
const (
	MaxBodyDefault = 2 << 20
	// RequestTimeoutDefault bounds the Redis work of one request.
	RequestTimeoutDefault = 10 * time.Second
)

// MaxIdempotencyKeyLength is the longest Idempotency-Key header accepted.
const MaxIdempotencyKeyLength = 255

// IdempotencyHeader is the request header that makes a createTask idempotent.
const IdempotencyHeader = "Idempotency-Key"

// JobIDPrefix starts the ID of every job the gateway submits (see Handler.JobID).
const JobIDPrefix = taskid.JobIDPrefix

// Config configures a Handler.
type Config struct {
	// Client submits the jobs and reads their outcomes. Build it with enqueue.Config.Shared: a
	// gateway serves many requests at once. Required.
	Client *enqueue.Client
	// Redis is the connection Client was built on: the gateway keeps its own keys there and
	// reads the queues' budgets and AnySolver's balance from it. Required.
	Redis redis.UniversalClient
	// Keys are the gateway keys. Nil accepts any non-empty key as LocalKeyName into the default
	// queue, which ListenAndServe allows on a loopback address only. Defaults to nil.
	Keys *Keys
	// MaxBody is the largest request body read, in bytes. Defaults to 2 MiB.
	MaxBody int64
	// IdempotencyTTL is how long an Idempotency-Key gives back its first taskId. It must not
	// outlast the Client's retention: the job it names has to still exist. Defaults to the
	// Client's retention.
	IdempotencyTTL time.Duration
	// Policy says which queues have a budget (the workers' policy file): a key whose queue's
	// budget is spent gets ERROR_ZERO_BALANCE from createTask, and getBalance answers what the
	// window has left (see worker.LoadPolicy). Defaults to no budgets.
	Policy *policyfile.Policy
	// CallbackAllowPrivate accepts callbackUrls written as loopback, private or link-local
	// addresses (see ForbiddenCallbackAddr). Defaults to false.
	CallbackAllowPrivate bool
	// Metrics counts requests. Defaults to nil: nothing counted.
	Metrics *Metrics
	// Logger receives errors (Redis trouble), with key names and never keys. Defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// WithDefaults returns a copy of c with every zero optional field set to its default.
func (c Config) WithDefaults() Config {
	if c.MaxBody <= 0 {
		c.MaxBody = MaxBodyDefault
	}
	if c.IdempotencyTTL <= 0 && c.Client != nil {
		c.IdempotencyTTL = c.Client.Retention()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	if c.Client == nil {
		return errors.New("gateway: Client must be an enqueue.Client, got nil")
	}
	if c.Redis == nil {
		return errors.New("gateway: Redis must be the connection the Client was built on, got nil")
	}
	if c.IdempotencyTTL > c.Client.Retention() {
		return fmt.Errorf("gateway: IdempotencyTTL (%s) must not outlast the Client's retention (%s): a replayed createTask must find its job",
			c.IdempotencyTTL, c.Client.Retention())
	}
	if c.MaxBody < 1024 {
		return fmt.Errorf("gateway: MaxBody must be at least 1024 bytes, got %d", c.MaxBody)
	}
	return nil
}

// Handler serves AnySolver's protocol: POST /{method}, JSON in and out, HTTP 200 for every
// protocol answer (errors travel in the body); and 2captcha's, /in.php and /res.php (see
// PathIn). It is safe for concurrent use.
type Handler struct {
	cfg    Config
	client *enqueue.Client
	rc     redis.UniversalClient
	ids    *taskid.Allocator
	quotas *quota.Store // the keys' rate limits and quotas (quota.go)
	named  sync.Map     // the key names noteKeyName recorded
	edge   edge         // the checks made before a request's protocol is read (edge.go)
}

// NewHandler returns a Handler on cfg.
func NewHandler(cfg Config) (*Handler, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rc := cfg.Redis
	// The rate limits and quotas go through rc's autopipeliner where it has one (a Ring has
	// not), as the Client's enqueues do: the requests served at the same moment share round
	// trips, one pipeline each, and every request still waits for its own answer.
	var shared redis.Cmdable = rc
	if ap, err := rc.AutoPipeline(); err == nil {
		shared = ap
	}
	h := &Handler{cfg: cfg, client: cfg.Client, rc: rc, ids: taskid.New(rc), quotas: quota.New(shared)}
	cfg.Metrics.tokensExpiredFrom(h.keyNames())
	h.edge = newEdge(cfg.Now)
	return h, nil
}

// Open reports whether the handler accepts any key (no keys file).
func (h *Handler) Open() bool { return h.cfg.Keys == nil }

// ServeHTTP answers one request. A request from a web page, or one to a gateway without keys
// under a Host that is not loopback, is refused before it is read (see admitRequest).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.admitRequest(w, r) {
		return
	}
	if path, ok := twoCaptchaPath(r.URL.Path); ok {
		h.serveTwoCaptcha(w, r, path)
		return
	}
	began := h.cfg.Now()
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-store")
	method := strings.Trim(r.URL.Path, "/")
	if r.Method != http.MethodPost {
		hdr.Set("Allow", http.MethodPost)
		h.write(w, http.StatusMethodNotAllowed, badRequest(CodeMethodNotAllowed,
			"every method is POST /{method} with a JSON body, e.g. POST /createTask").answer())
		h.cfg.Metrics.answered(method, noKey, CodeMethodNotAllowed, h.cfg.Now().Sub(began))
		return
	}
	keyName, a := h.serve(r, method)
	h.write(w, http.StatusOK, a)
	h.cfg.Metrics.answered(method, keyName, a.ErrorCode, h.cfg.Now().Sub(began))
}

func (h *Handler) write(w http.ResponseWriter, status int, a Answer) {
	data, err := json.Marshal(a)
	if err != nil {
		data = []byte(`{"errorId":2,"errorCode":"INTERNAL_ERROR","errorDescription":"could not encode the answer"}`)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// serve answers one POST and says which key asked.
func (h *Handler) serve(r *http.Request, method string) (string, Answer) {
	if !knownMethod(method) {
		return noKey, badRequest(CodeNoSuchMethod, "%q is not a method here; want one of %s at the root path",
			truncate(method, 64), strings.Join(Methods, ", ")).answer()
	}
	body, aerr := h.readBody(r)
	if aerr != nil {
		return noKey, aerr.answer()
	}
	env, aerr := decodeEnvelope(body)
	if aerr != nil {
		return noKey, aerr.answer()
	}
	clientKey, aerr := env.clientKey()
	if aerr != nil {
		return noKey, aerr.answer()
	}
	key, aerr := h.authenticate(r, clientKey)
	if aerr != nil {
		return noKey, aerr.answer()
	}
	ctx, cancel := context.WithTimeout(r.Context(), RequestTimeoutDefault)
	defer cancel()
	var a Answer
	var err error
	if method == MethodCreateTask {
		// Counted against the key's rate limit at its admission, in the same round trip.
		rate := &rateCount{key: key}
		a, err = h.createTask(ctx, r, rate, env, body)
		err = h.settle(ctx, rate, err)
	} else if err = h.allow(ctx, key); err == nil {
		switch method {
		case MethodGetTaskResult:
			a, err = h.getTaskResult(ctx, key, env)
		case MethodGetBalance:
			a, err = h.getBalance(ctx, key)
		default:
			a, err = h.report(ctx, method, key, env)
		}
	}
	var apiErr *apiError
	switch {
	case errors.As(err, &apiErr):
		return key.Name, apiErr.answer()
	case err != nil:
		h.cfg.Logger.Error("gateway: request failed", "method", method, "key", key.Name, "err", err)
		return key.Name, Answer{ErrorID: 2, ErrorCode: CodeInternalError,
			ErrorDescription: "the gateway could not reach its queue; try again in a few seconds"}
	}
	return key.Name, a
}

func knownMethod(m string) bool {
	for _, known := range Methods {
		if m == known {
			return true
		}
	}
	return false
}

func (h *Handler) readBody(r *http.Request) ([]byte, *apiError) {
	if r.ContentLength > h.cfg.MaxBody {
		return nil, badRequest(CodeImageTooLarge, "the request body is %d bytes; this gateway reads at most %d (--max-body)", r.ContentLength, h.cfg.MaxBody)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, h.cfg.MaxBody+1))
	if err != nil {
		return nil, badRequest(CodeInvalidTaskData, "the request body could not be read: %v", err)
	}
	if int64(len(body)) > h.cfg.MaxBody {
		return nil, badRequest(CodeImageTooLarge, "the request body is over %d bytes, the most this gateway reads (--max-body)", h.cfg.MaxBody)
	}
	return body, nil
}

// lookup finds the key a client sent. Without a keys file any non-empty key is LocalKeyName.
func (h *Handler) lookup(clientKey string) (Key, bool) {
	if h.cfg.Keys == nil {
		return localKey(), true
	}
	return h.cfg.Keys.Lookup(clientKey)
}

// createTask builds the job of a createTask request and submits it (see submit), counting it
// against its key's rate limit at its admission when it gets that far (rate).
func (h *Handler) createTask(ctx context.Context, r *http.Request, rate *rateCount, env envelope, body []byte) (Answer, error) {
	key := rate.key
	task, aerr := env.object("task")
	if aerr != nil {
		return Answer{}, aerr
	}
	if task == nil {
		return Answer{}, badRequest(CodeInvalidTaskData, "task is required: the AnySolver task object, e.g. {\"type\":\"RecaptchaV2TaskProxyless\",...}")
	}
	job := enqueue.Job{Queue: key.Queue, Task: task, KeyName: key.Name}
	if job.Provider, aerr = env.str("provider"); aerr != nil {
		return Answer{}, aerr
	}
	if job.Settings, aerr = env.object("settings"); aerr != nil {
		return Answer{}, aerr
	}
	if job.CallbackURL, aerr = env.str("callbackUrl"); aerr != nil {
		return Answer{}, aerr
	}
	id, err := h.submit(ctx, rate, job, r.Header.Get(IdempotencyHeader), body)
	if err != nil {
		return Answer{}, err
	}
	return Answer{TaskID: id}, nil
}

// submit validates a job exactly as enqueue validates one, checks its key's budget and its
// callback's address, gives it its key's lifetime as its deadline and a taskId, admits it to its
// key's rate limit and quotas (admit) and submits it: every protocol's way in. With an
// Idempotency-Key (idemKey), a request seen before gives back its first taskId and submits
// nothing; the same key with another request is refused. request is what the client sent,
// compared for that. The request is counted against its key's rate limit (rate) before the
// Idempotency-Key is claimed, else by its admission; the caller settles a request that ended
// before either.
func (h *Handler) submit(ctx context.Context, rate *rateCount, job enqueue.Job, idemKey string, request []byte) (int64, error) {
	key := rate.key
	job.Deadline = key.lifetime().String()
	if err := job.Validate(); err != nil {
		return 0, validationAnswer(err, job.Task)
	}
	if aerr := h.budgetRoom(ctx, key); aerr != nil {
		return 0, aerr
	}
	if job.CallbackURL != "" && !h.cfg.CallbackAllowPrivate {
		if aerr := checkCallbackTarget(job.CallbackURL); aerr != nil {
			return 0, aerr
		}
	}
	var idem, bodySum string
	if idemKey != "" {
		if len(idemKey) > MaxIdempotencyKeyLength {
			return 0, badRequest(CodeInvalidTaskData, "%s is %d bytes long; at most %d", IdempotencyHeader, len(idemKey), MaxIdempotencyKeyLength)
		}
		idem = hexSum([]byte(idemKey))
		bodySum = hexSum(request)
		// The claim is a write: a request over the rate limit must not make it.
		if err := h.settle(ctx, rate, nil); err != nil {
			return 0, err
		}
	}
	for range 3 {
		id, err := h.ids.Next(ctx)
		if err != nil {
			return 0, err
		}
		if idem != "" {
			prev, taken, err := h.claimIdempotencyKey(ctx, key, idem, idemRecord{TaskID: id, Body: bodySum})
			if err != nil {
				return 0, err
			}
			if taken {
				if prev.Body != bodySum {
					return 0, badRequest(CodeInvalidTaskData, "%s was already used with another request body: "+
						"a retry must send the same request, a new task a new key", IdempotencyHeader)
				}
				return prev.TaskID, nil
			}
		}
		if job.ID, err = h.ids.JobID(ctx, key.Name, id); err != nil {
			return 0, err
		}
		if err := h.admit(ctx, rate, job); err != nil {
			h.unclaim(key, idem)
			return 0, err
		}
		job.GatewayTaskID = id
		h.noteKeyName(ctx, key.Name)
		sub, err := h.client.SubmitJob(ctx, job)
		if err == nil && !sub.Existing {
			return id, nil
		}
		// Not submitted: free the Idempotency-Key, so that a retry starts afresh instead of
		// finding a taskId with no job. A job already there means a taskId given before (the
		// counter went back with a Redis that lost data): take the next one; that job keeps the
		// slot its ID holds.
		h.unclaim(key, idem)
		if err != nil {
			h.release(key, job)
			return 0, err
		}
	}
	return 0, errors.New("no free taskId after 3 tries")
}

// unclaim removes an Idempotency-Key claimed for a job that was not submitted.
func (h *Handler) unclaim(key Key, idem string) {
	if idem == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.rc.Del(ctx, keys.GatewayIdempotency(key.Queue, key.Name, idem)).Err(); err != nil {
		h.cfg.Logger.Warn("gateway: could not free the Idempotency-Key of a job that was not submitted", "key", key.Name, "err", err)
	}
}

// JobID returns the ID of the job behind a taskId of the named key, for an operator who has a
// taskId and wants the job (solvequeue status, the web UI). The job is in the key's queue.
func (h *Handler) JobID(ctx context.Context, keyName string, taskID int64) (string, error) {
	return h.ids.JobID(ctx, keyName, taskID)
}

// jobOf names the job behind the request's taskId for this key. A taskId that is malformed is
// TASK_NOT_FOUND at once; any other names a job that exists only if this key created it.
func (h *Handler) jobOf(ctx context.Context, key Key, env envelope) (string, error) {
	id, ok, aerr := env.taskID()
	if aerr != nil {
		return "", aerr
	}
	if !ok {
		return "", notFound(env)
	}
	return h.ids.JobID(ctx, key.Name, id)
}

func notFound(env envelope) *apiError {
	return badRequest(CodeTaskNotFound, "taskId %s is not a task of this key, or its outcome is no longer kept", truncate(string(env["taskId"]), 32))
}

func (h *Handler) getTaskResult(ctx context.Context, key Key, env envelope) (Answer, error) {
	jobID, err := h.jobOf(ctx, key, env)
	if err != nil {
		return Answer{}, err
	}
	out, err := h.status(ctx, key, jobID)
	if errors.Is(err, enqueue.ErrJobNotFound) {
		return Answer{}, notFound(env)
	}
	if err != nil {
		return Answer{}, err
	}
	h.tokenRead(ctx, MethodGetTaskResult, key, jobID, out)
	return DialectResultAnswer(out), nil
}

// budgetRoom refuses a createTask whose queue's budget is spent for its window, with the code
// every captcha client already handles for an empty account.
func (h *Handler) budgetRoom(ctx context.Context, key Key) error {
	b := h.cfg.Policy.Queue(key.Queue).Budget
	if b == nil {
		return nil
	}
	u, err := ledger.New(h.rc).Read(ctx, key.Queue, *b)
	if err != nil {
		return err
	}
	if !u.Spent() {
		return nil
	}
	desc := "the budget of this key's queue is spent for its rolling window"
	if !u.NextRoom.IsZero() {
		desc += "; room again at " + u.NextRoom.UTC().Format(time.RFC3339)
	}
	return &apiError{id: 1, code: CodeZeroBalance, description: desc}
}

// getBalance answers what the key's queue may still spend in its window when its budget caps
// money, else AnySolver's balance as the workers last read it.
func (h *Handler) getBalance(ctx context.Context, key Key) (Answer, error) {
	if b := h.cfg.Policy.Queue(key.Queue).Budget; b != nil && b.MaxCost > 0 {
		u, err := ledger.New(h.rc).Read(ctx, key.Queue, *b)
		if err != nil {
			return Answer{}, err
		}
		left := u.RemainingCost
		return Answer{Balance: &left}, nil
	}
	b, err := balance.Read(ctx, h.rc)
	if errors.Is(err, balance.ErrUnknown) {
		return Answer{}, &apiError{id: 2, code: CodeInternalError, description: err.Error()}
	}
	if err != nil {
		return Answer{}, err
	}
	return Answer{Balance: &b.Balance}, nil
}

// report answers success for a task of the key, counted by the task's type; the lookup is
// getTaskResult's, so it tells no more than getTaskResult does.
func (h *Handler) report(ctx context.Context, method string, key Key, env envelope) (Answer, error) {
	jobID, err := h.jobOf(ctx, key, env)
	if err != nil {
		return Answer{}, err
	}
	typ, err := h.client.TaskTypeIn(ctx, key.Queue, jobID)
	if errors.Is(err, enqueue.ErrJobNotFound) {
		return Answer{}, notFound(env)
	}
	if err != nil {
		return Answer{}, err
	}
	h.cfg.Metrics.reported(method, key.Name, typ)
	return Answer{Status: StatusSuccess}, nil
}

func hexSum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
