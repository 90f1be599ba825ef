package classify_test

import (
	"fmt"

	"github.com/solvequeue/solvequeue/classify"
)

func ExamplePolicy_Classify() {
	p := classify.Default()
	for _, e := range []classify.Error{
		{Call: classify.CallCreateTask, ErrorID: 1, ErrorCode: "RATE_LIMITED", ErrorDescription: "Request rate limit exceeded."},
		{Call: classify.CallCreateTask, ErrorID: 1, ErrorCode: "ERROR_ZERO_BALANCE"},
		{Call: classify.CallGetTaskResult, ErrorID: 2, ErrorCode: "SOMETHING_NEW"},
		{Call: classify.CallGetTaskResult, Failure: classify.FailureHTTPStatus, HTTPStatus: 502},
	} {
		v := p.Classify(e)
		fmt.Printf("%s: %s wait=%v account=%v\n", v.Code, v.Decision, v.Wait, v.Account)
	}
	// Output:
	// RATE_LIMITED: throttle wait=5s account=false
	// ERROR_ZERO_BALANCE: failed wait=0s account=true
	// SOMETHING_NEW: retry wait=0s account=false
	// HTTP_5XX: retry wait=0s account=false
}
