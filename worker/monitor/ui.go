package monitor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/enqueue"
)

// sharedConn hands asynqmon the worker's own Redis client. asynqmon's HTTPHandler.Close
// would close it (through its client and its Inspector, which then counts as the owner), so
// the handler is never closed: its client is ours and lives as long as the worker.
type sharedConn struct{ rc redis.UniversalClient }

// MakeRedisClient returns the shared client.
func (c sharedConn) MakeRedisClient() interface{} { return c.rc }

// newUI returns asynqmon rooted at MonitoringPath, showing payloads and results redacted.
func newUI(cfg Config) http.Handler {
	return asynqmon.New(asynqmon.Options{
		RootPath:         MonitoringPath,
		RedisConnOpt:     sharedConn{rc: cfg.Redis},
		PayloadFormatter: asynqmon.PayloadFormatterFunc(formatPayload),
		ResultFormatter:  asynqmon.ResultFormatterFunc(formatResult),
		ReadOnly:         !cfg.AllowsChanges(),
	})
}

// formatPayload shows a solve job's payload with proxy passwords and keys redacted; the payload
// of any other task type is not shown at all, since nothing says how to redact it.
func formatPayload(taskType string, payload []byte) string {
	if taskType != enqueue.TaskType {
		return fmt.Sprintf("(%d bytes of a task that is not %s: hidden)", len(payload), enqueue.TaskType)
	}
	return indent(enqueue.RedactJSON(payload))
}

// formatResult shows a job's record (its result field) redacted.
func formatResult(_ string, result []byte) string {
	if len(result) == 0 {
		return ""
	}
	return indent(enqueue.RedactJSON(result))
}

func indent(data []byte) string {
	var b bytes.Buffer
	if err := json.Indent(&b, data, "", "  "); err != nil {
		return string(data)
	}
	return b.String()
}
