package anysolvertest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

const key = "test-key"

// start runs a fake with opts on loopback, closed when the test ends.
func start(t *testing.T, opts anysolvertest.Options) (*anysolvertest.Server, string) {
	t.Helper()
	fake, ts := anysolvertest.NewServer(opts)
	t.Cleanup(ts.Close)
	t.Cleanup(fake.Close)
	return fake, ts.URL
}

// post sends body to base/method and decodes the JSON answer, numbers as json.Number so a
// test can tell a number from a string.
func post(t *testing.T, base, method, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(base+"/"+method, "application/json", bytes.NewBufferString(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&m), "body %q", raw)
	return resp.StatusCode, m
}

func createBody(task string) string {
	return `{"clientKey":"` + key + `","task":` + task + `}`
}

// pollBody asks for the task whose id is exactly as it came (number or string).
func pollBody(id any) string {
	b, _ := json.Marshal(map[string]any{"clientKey": key, "taskId": id})
	return string(b)
}

// create makes one task and returns its id as it came.
func create(t *testing.T, base, task string) any {
	t.Helper()
	status, m := post(t, base, "createTask", createBody(task))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, json.Number("0"), m["errorId"], "answer %v", m)
	require.NotNil(t, m["taskId"], "answer %v", m)
	return m["taskId"]
}

func requireCode(t *testing.T, m map[string]any, code string, id int) {
	t.Helper()
	require.Equal(t, code, m["errorCode"], "answer %v", m)
	require.Equal(t, json.Number(itoa(id)), m["errorId"], "answer %v", m)
	require.NotEmpty(t, m["errorDescription"])
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func epoch() *anysolvertest.Clock { return anysolvertest.NewClock(time.Unix(1_700_000_000, 0)) }

const token = `{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://example.com","websiteKey":"6Le-k"}`
