package jobwire_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/jobwire"
)

// FuzzDecodePayload is the fuzz target for payloads found in Redis. Its seed corpus lives in
// testdata/fuzz/FuzzDecodePayload; run it with:
//
//	go test ./internal/jobwire -run '^$' -fuzz '^FuzzDecodePayload$' -fuzztime 30s

// FuzzDecodePayload checks what a worker does with whatever it finds in Redis under our task
// type: a payload it accepts reads back the same after encoding, one it refuses gets a reason
// that never quotes the job's proxy password (planted in the task, in the field or the URL
// form), and nothing panics.
func FuzzDecodePayload(f *testing.F) {
	f.Add([]byte(`{"v":1,"task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://a.example","websiteKey":"6Le"},"submittedAt":"2026-01-02T03:04:05Z"}`), "hunter22")
	f.Add([]byte(`{"v":1,"task":{"type":"ImageToTextTask"},"bodyRef":"solvequeue:blob:ab","deadline":"2030-01-01T00:00:00Z","maxRetries":3}`), "x")
	f.Add([]byte(`{"v":1,"task":{"type":"RecaptchaV2Task","websiteURL":"https://a.example","websiteKey":"k","proxy":"http://u:hunter22@h:1"}}`), "p@ss")
	f.Add([]byte(`{"v":1,"task":{"type":"X","proxyType":"ftp","proxyAddress":"h","proxyPort":1}}`), "hunter22")
	f.Add([]byte(`{"v":1,"task":{"type":"X","proxyType":"http","proxyAddress":"h","proxyPort":0}}`), "pw")
	f.Add([]byte(`{"v":2,"task":{"type":"X"}}`), "")
	f.Add([]byte(`garbage{{`), "")
	f.Add([]byte(`null`), "")
	f.Fuzz(func(t *testing.T, data []byte, password string) {
		checkPayload(t, data)
		var raw map[string]any
		task, ok := map[string]any(nil), false
		if json.Unmarshal(data, &raw) == nil {
			task, ok = raw["task"].(map[string]any)
		}
		if !ok {
			return
		}
		secret := "\u00a7" + password + "\u00a7" // a marker no error text has of its own
		if len(password)%2 == 0 {
			task["proxyPassword"] = secret
		} else {
			task["proxy"] = "http://u:" + secret + "@proxy.example:3128"
		}
		planted, err := json.Marshal(raw)
		require.NoError(t, err)
		if _, err := checkPayload(t, planted); err != nil {
			require.NotContains(t, err.Error(), secret, "the refusal quotes the proxy password")
		}
	})
}

// checkPayload decodes a payload and, when it is accepted, checks it reads back the same.
func checkPayload(t *testing.T, data []byte) (jobwire.Payload, error) {
	p, err := jobwire.DecodePayload(data)
	if err != nil {
		require.NotEmpty(t, err.Error())
		return p, err
	}
	require.Equal(t, jobwire.PayloadVersion, p.V)
	require.NotEmpty(t, p.TaskType())
	enc, err := json.Marshal(p)
	require.NoError(t, err)
	back, err := jobwire.DecodePayload(enc)
	require.NoError(t, err, "an accepted payload must read back: %s", enc)
	require.Equal(t, p.TaskType(), back.TaskType())
	require.Equal(t, p.BodyRef, back.BodyRef)
	require.True(t, p.Deadline.Equal(back.Deadline))
	return p, nil
}
