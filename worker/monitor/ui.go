package monitor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/redact"
)

// sharedConn hands asynqmon the worker's own Redis client. asynqmon's HTTPHandler.Close
// would close it (through its client and its Inspector, which then counts as the owner), so
// the handler is never closed: its client is ours and lives as long as the worker.
type sharedConn struct{ rc redis.UniversalClient }

// MakeRedisClient returns the shared client.
func (c sharedConn) MakeRedisClient() interface{} { return c.rc }

// newUI returns asynqmon rooted at MonitoringPath, showing payloads and results redacted.
func newUI(cfg Config) http.Handler {
	return withJobHeadlines(asynqmon.New(asynqmon.Options{
		RootPath:         MonitoringPath,
		RedisConnOpt:     sharedConn{rc: cfg.Redis},
		PayloadFormatter: asynqmon.PayloadFormatterFunc(formatPayload),
		ResultFormatter:  asynqmon.ResultFormatterFunc(formatResult),
		ReadOnly:         !cfg.AllowsChanges(),
	}))
}

// formatPayload shows a solve job's payload with proxy passwords and keys redacted; the payload
// of any other task type is not shown at all, since nothing says how to redact it.
func formatPayload(taskType string, payload []byte) string {
	if taskType != jobwire.TaskType {
		return fmt.Sprintf("(%d bytes of a task that is not %s: hidden)", len(payload), jobwire.TaskType)
	}
	return indent(redact.JSON(payload))
}

// formatResult shows a job's record (its result field) redacted.
func formatResult(_ string, result []byte) string {
	if len(result) == 0 {
		return ""
	}
	return indent(redact.JSON(result))
}

func indent(data []byte) string {
	var b bytes.Buffer
	if err := json.Indent(&b, data, "", "  "); err != nil {
		return string(data)
	}
	return b.String()
}

// withJobHeadlines wraps asynqmon so that the payload it shows of each task starts with the task's
// full ID and solvequeue's state: asynqmon's tables cut an ID at its first dash ("order-42" shows
// as "order") and file a failed job under "Completed", and its payload formatter is given the
// payload alone, without the ID. So asynqmon's task JSON is rewritten on its way out: a solve
// job's payload becomes {"id": ..., "state": ..., "code": ..., "payload": <the redacted payload>},
// which its UI shows as indented JSON, the ID and state on top; any other task's text is headed
// by an "ID · state" line. Everything else asynqmon serves passes through untouched.
func withJobHeadlines(ui http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind, ok := taskAPIKind(r.URL.Path)
		if r.Method != http.MethodGet || !ok {
			ui.ServeHTTP(w, r)
			return
		}
		c := newPageRecorder()
		ui.ServeHTTP(c, r)
		body := c.body.Bytes()
		if c.code == http.StatusOK {
			if out, err := addHeadlines(body, kind); err == nil {
				body = out
			}
		}
		for k, v := range c.header {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(c.code)
		_, _ = w.Write(body)
	})
}

// taskAPIKind says whether a path is one of asynqmon's task reads, and which: a list by asynq
// state ("pending", "retry", "archived", "completed", ... from .../{state}_tasks) or "" for one
// task (.../tasks/{id}).
func taskAPIKind(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, MonitoringPath+"/api/queues/")
	if !ok {
		return "", false
	}
	parts := strings.Split(rest, "/")
	last := parts[len(parts)-1]
	switch {
	case len(parts) == 3 && parts[1] == "tasks":
		return "", true
	case (len(parts) == 2 || len(parts) == 4 && parts[1] == "groups") && strings.HasSuffix(last, "_tasks") && !strings.Contains(last, ":"):
		return strings.TrimSuffix(last, "_tasks"), true
	}
	return "", false
}

// addHeadlines rewrites the payload of each task of a list ({"tasks": [...], ...}) or of one task.
func addHeadlines(body []byte, kind string) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	if kind == "" {
		if err := headline(doc, ""); err != nil {
			return nil, err
		}
		return json.Marshal(doc)
	}
	var tasks []map[string]json.RawMessage
	if err := json.Unmarshal(doc["tasks"], &tasks); err != nil {
		return nil, err
	}
	for _, t := range tasks {
		if err := headline(t, kind); err != nil {
			return nil, err
		}
	}
	raw, err := json.Marshal(tasks)
	if err != nil {
		return nil, err
	}
	doc["tasks"] = raw
	return json.Marshal(doc)
}

// headline puts the task's ID and state at the head of its payload text; kind is the asynq state
// of the list it came in, or "" when the task says it.
func headline(t map[string]json.RawMessage, kind string) error {
	var id, typ, payload, result, state string
	for field, dst := range map[string]*string{"id": &id, "type": &typ, "payload": &payload, "result": &result, "state": &state} {
		if raw, ok := t[field]; ok {
			if err := json.Unmarshal(raw, dst); err != nil {
				return err
			}
		}
	}
	if kind != "" {
		state = kind
	}
	ours, code := ourState(state, result)
	var text string
	if typ == jobwire.TaskType && json.Valid([]byte(payload)) {
		var b bytes.Buffer
		b.WriteString(`{"id":`)
		writeJSON(&b, id)
		b.WriteString(`,"state":`)
		writeJSON(&b, string(ours))
		if code != "" {
			b.WriteString(`,"code":`)
			writeJSON(&b, code)
		}
		b.WriteString(`,"payload":`)
		b.WriteString(payload)
		b.WriteString("}")
		text = indent(b.Bytes())
	} else {
		text = id + " · " + string(ours) + "\n" + payload
	}
	raw, err := json.Marshal(text)
	if err != nil {
		return err
	}
	t["payload"] = raw
	return nil
}

func writeJSON(b *bytes.Buffer, s string) {
	raw, _ := json.Marshal(s)
	b.Write(raw)
}

// ourState is solvequeue's name for an asynq state, with the record's outcome and code for a
// completed task (the result text is the record as formatResult shows it).
func ourState(asynqState, result string) (enqueue.State, string) {
	switch asynqState {
	case "active":
		return enqueue.StateActive, ""
	case "scheduled":
		return enqueue.StateScheduled, ""
	case "retry":
		return enqueue.StateRetrying, ""
	case "archived":
		rec, _ := jobwire.DecodeRecord([]byte(result))
		return enqueue.StateDead, codeOf(rec)
	case "completed":
		rec, err := jobwire.DecodeRecord([]byte(result))
		if err != nil || !rec.State.Terminal() {
			return enqueue.StateSolved, ""
		}
		return rec.State, codeOf(rec)
	default: // pending, aggregating
		return enqueue.StatePending, ""
	}
}

func codeOf(rec jobwire.Record) string {
	if rec.Error == nil || rec.State == enqueue.StateSolved {
		return ""
	}
	return rec.Error.ErrorCode
}
