package enqueue_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
)

// Fuzz targets for batch files (FuzzReadJobs; the single line is FuzzParseJob in job_test.go);
// payloads found in Redis are fuzzed in internal/jobwire and redaction in internal/redact. Seed
// corpora live in testdata/fuzz/<target>; run one with, e.g.:
//
//	go test ./enqueue -run '^$' -fuzz '^FuzzReadJobs$' -fuzztime 30s

// FuzzReadJobs checks that a batch file is either refused whole, naming each bad line, or read
// whole into valid jobs with ids that come out the same on every read (what makes a batch
// resumable), never a panic.
func FuzzReadJobs(f *testing.F) {
	f.Add([]byte(`{"task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://a.example","websiteKey":"6Le"}}` + "\n" +
		"\n# a comment\n" + `{"id":"x-1","queue":"low","task":{"type":"ImageToTextTask","body":"iVBORw0KGgo="}}` + "\n"))
	f.Add([]byte(`{"task":{"type":"X"}}` + "\r\n" + `{"task":{"type":"X"}}` + "\r\n"))
	f.Add([]byte("{\"task\":{\"type\":\"X\"}}\n{\"task\":{}}\nnot json\n{\"id\":\"a b\",\"task\":{\"type\":\"X\"}}\n"))
	f.Add([]byte(`{"task":{"type":"X"}}`)) // no final newline
	f.Add([]byte("\xef\xbb\xbf{\"task\":{\"type\":\"X\"}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte("\n")) + 1
		jobs, err := enqueue.ReadJobs(bytes.NewReader(data))
		if err != nil {
			require.Nil(t, jobs, "a refused file gives no jobs")
			var batchErr *enqueue.BatchError
			require.ErrorAs(t, err, &batchErr)
			require.NotEmpty(t, batchErr.Lines)
			prev := 0
			for _, l := range batchErr.Lines {
				require.Greater(t, l.Line, prev, "bad lines in order, each once")
				require.LessOrEqual(t, l.Line, lines)
				require.NotEmpty(t, l.Err.Error())
				prev = l.Line
			}
			return
		}
		again, err := enqueue.ReadJobs(bytes.NewReader(data))
		require.NoError(t, err)
		require.Len(t, again, len(jobs))
		prev := 0
		derived := map[string]bool{}
		for i, j := range jobs {
			require.Greater(t, j.Line, prev)
			require.LessOrEqual(t, j.Line, lines)
			prev = j.Line
			require.NoError(t, j.Job.Validate(), "line %d", j.Line)
			require.NotEmpty(t, j.Job.ID)
			require.Equal(t, j.Job.ID, again[i].Job.ID, "line %d gets another id on a second read", j.Line)
			if strings.HasPrefix(j.Job.ID, "line-") {
				require.False(t, derived[j.Job.ID], "two lines derive the id %s", j.Job.ID)
				derived[j.Job.ID] = true
			}
		}
	})
}
