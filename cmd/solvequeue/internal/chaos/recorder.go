package chaos

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path"
	"sync"
	"time"

	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// call is one createTask or getTaskResult as the fake answered it.
type call struct {
	At     time.Time
	TaskID string // the task created (createTask) or asked about (getTaskResult); "" when none
	Code   string // the errorCode answered, "" for none
	Status string // getTaskResult's status: processing, ready or failed
	Token  string // the solution's token in a ready answer
}

// jobCalls is what the fake answered one job (one websiteKey).
type jobCalls struct {
	creates []call // every createTask, paid or not
	polls   []call // every getTaskResult of one of the job's tasks
}

// recorder sits in front of the fake AnySolver and keeps, per websiteKey, every createTask and
// getTaskResult with its answer: the fake's own answers, read off the wire, so that the chaos
// run's checks rest on what AnySolver said rather than on what the workers claim.
type recorder struct {
	fake *anysolvertest.Server

	mu     sync.Mutex
	jobs   map[string]*jobCalls
	byTask map[string]string // remote task id → websiteKey
}

func newRecorder(fake *anysolvertest.Server) *recorder {
	return &recorder{fake: fake, jobs: map[string]*jobCalls{}, byTask: map[string]string{}}
}

// wireAnswer is the part of an AnySolver answer the recorder reads.
type wireAnswer struct {
	ErrorCode string          `json:"errorCode"`
	TaskID    json.RawMessage `json:"taskId"`
	Status    string          `json:"status"`
	Solution  struct {
		Token string `json:"token"`
	} `json:"solution"`
}

// ServeHTTP passes the call to the fake and records its answer.
func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 32<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	tee := &teeWriter{ResponseWriter: w}
	r.fake.ServeHTTP(tee, req)
	var in struct {
		Task   map[string]any  `json:"task"`
		TaskID json.RawMessage `json:"taskId"`
	}
	var out wireAnswer
	if json.Unmarshal(body, &in) != nil || json.Unmarshal(tee.buf.Bytes(), &out) != nil {
		return
	}
	c := call{At: time.Now(), Code: out.ErrorCode, Status: out.Status, Token: out.Solution.Token}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch path.Base(req.URL.Path) {
	case "createTask":
		key := anysolvertest.TaskKey(in.Task)
		c.TaskID = taskIDText(out.TaskID)
		if c.TaskID != "" {
			r.byTask[c.TaskID] = key
		}
		r.job(key).creates = append(r.job(key).creates, c)
	case "getTaskResult":
		c.TaskID = taskIDText(in.TaskID)
		if key, ok := r.byTask[c.TaskID]; ok {
			r.job(key).polls = append(r.job(key).polls, c)
		}
	}
}

func (r *recorder) job(key string) *jobCalls {
	j := r.jobs[key]
	if j == nil {
		j = &jobCalls{}
		r.jobs[key] = j
	}
	return j
}

// calls returns a copy of what the fake answered the job with this websiteKey.
func (r *recorder) calls(key string) jobCalls {
	r.mu.Lock()
	defer r.mu.Unlock()
	j := r.jobs[key]
	if j == nil {
		return jobCalls{}
	}
	return jobCalls{creates: append([]call(nil), j.creates...), polls: append([]call(nil), j.polls...)}
}

// taskIDText is a task id as text: a JSON string's content or a number's digits.
func taskIDText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// teeWriter keeps a copy of the answer written through it.
type teeWriter struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (t *teeWriter) Write(p []byte) (int, error) {
	t.buf.Write(p)
	return t.ResponseWriter.Write(p)
}
