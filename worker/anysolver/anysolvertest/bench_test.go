package anysolvertest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// BenchmarkServePoll is the fake's own cost of one getTaskResult with 10,000 tasks in flight,
// without the network.
func BenchmarkServePoll(b *testing.B) {
	fake := anysolvertest.New(anysolvertest.Options{Balance: 1e6, Script: func(anysolvertest.Task) anysolvertest.Behavior {
		return anysolvertest.Behavior{SolveTime: time.Hour}
	}})
	serve := func(method, body string) []byte {
		rec := httptest.NewRecorder()
		fake.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/"+method, bytes.NewBufferString(body)))
		return rec.Body.Bytes()
	}
	ids := make([]string, 10_000)
	for i := range ids {
		var a struct{ TaskID json.RawMessage }
		_ = json.Unmarshal(serve("createTask", createBody(fmt.Sprintf(`{"type":"TurnstileTaskProxyless","websiteKey":"k%d"}`, i))), &a)
		ids[i] = pollBody(a.TaskID)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		serve("getTaskResult", ids[i%len(ids)])
		i++
	}
}
