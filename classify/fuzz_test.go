package classify_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
)

// FuzzClassify checks Classify's invariants on arbitrary errors.
func FuzzClassify(f *testing.F) {
	f.Add("createTask", 1, "RATE_LIMITED", "Request rate limit exceeded.", "", 0)
	f.Add("getTaskResult", 2, "brand_new", "", "", 0)
	f.Add("getBalance", 0, "", "", "http_status", 429)
	f.Add("createTask", 0, "", "<html>502</html>", "bad_body", 502)
	f.Add("", -1, " error_zero_balance ", "x", "timeout", 404)
	p := classify.Default()
	f.Fuzz(func(t *testing.T, call string, id int, code, desc, failure string, status int) {
		e := classify.Error{Call: classify.Call(call), ErrorID: id, ErrorCode: code, ErrorDescription: desc, Failure: classify.Failure(failure), HTTPStatus: status}
		v := p.Classify(e)
		_, err := classify.ParseDecision(string(v.Decision))
		require.NoError(t, err)
		require.NotEmpty(t, v.Code)
		require.NotEmpty(t, v.Reason)
		if v.Decision == classify.Throttle {
			require.GreaterOrEqual(t, v.Wait, 5*time.Second)
			require.GreaterOrEqual(t, p.ThrottleDelay(v, 0.5), v.Wait)
		} else {
			require.Zero(t, v.Wait)
		}
		require.Equal(t, v.Code == "ERROR_ZERO_BALANCE" || v.Code == "ERROR_KEY_DOES_NOT_EXIST" || v.Code == "ERROR_USER_BANNED", v.Account)

		// The description and the call never change the verdict.
		e.ErrorDescription, e.Call = "", ""
		require.Equal(t, v, p.Classify(e))
		// The errorId changes at most the decision of a code outside the table.
		e.ErrorID = 1
		w := p.Classify(e)
		e.ErrorID = 2
		if x := p.Classify(e); w.Decision == x.Decision {
			require.Equal(t, w, x)
		}
	})
}
