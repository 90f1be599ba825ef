package gateway

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
)

// FuzzDecodeRequest drives every part of the request decoder a client's bytes reach: the
// envelope, clientKey, the createTask fields, the job validation and taskId. None may panic;
// every refusal is an errorId 1 answer with a code and a description; a taskId accepted is one
// the gateway could have given.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"clientKey":"k","task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://a.example","websiteKey":"6Le"},"softId":54}`))
	f.Add([]byte(`{"clientKey":"k","task":{"type":"ImageToTextTask","body":"iVBORw0KGgo=","phrase":null},"provider":"CapSolver","settings":{"a":1}}`))
	f.Add([]byte(`{"clientKey":"k","taskId":4503599627370495}`))
	f.Add([]byte(`{"clientKey":"k","taskId":"123"}`))
	f.Add([]byte(`{"clientKey":"k","taskId":-1,"callbackUrl":"https://h.example/cb"}`))
	f.Add([]byte(`{"clientKey":7,"task":"x","taskId":{}}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`{"a":1} x`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkErr := func(e *apiError) {
			if e == nil {
				return
			}
			require.Contains(t, []int{1, 2}, e.id)
			require.NotEmpty(t, e.code)
			require.NotEmpty(t, e.description)
			_, err := json.Marshal(e.answer())
			require.NoError(t, err)
		}
		env, e := decodeEnvelope(body)
		checkErr(e)
		if e != nil {
			return
		}
		_, e = env.clientKey()
		checkErr(e)
		task, e := env.object("task")
		checkErr(e)
		provider, e := env.str("provider")
		checkErr(e)
		settings, e := env.object("settings")
		checkErr(e)
		cb, e := env.str("callbackUrl")
		checkErr(e)
		job := enqueue.Job{Task: task, Provider: provider, Settings: settings, CallbackURL: cb}
		if err := job.Validate(); err != nil {
			checkErr(validationAnswer(err, task))
		}
		if env.has("taskId") {
			id, ok, e := env.taskID()
			checkErr(e)
			if ok {
				require.Positive(t, id)
				require.LessOrEqual(t, id, int64(MaxTaskID))
			}
		}
	})
}
