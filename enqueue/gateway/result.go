package gateway

import (
	"errors"
	"strconv"
	"strings"

	"github.com/solvequeue/solvequeue/enqueue"
)

// ResultAnswer is getTaskResult's answer for a job's outcome:
//   - pending, scheduled, active or retrying: status "processing" (never "idle", on which some
//     clients spin);
//   - solved: status "ready" with the solution whole, cost as a decimal string, createTime and
//     endTime in Unix seconds, solveCount (the attempts it took) and, for a token, expiresAt in
//     Unix seconds;
//   - failed or dead: status "failed" with the outcome's original errorId and errorCode; codes
//     of solvequeue's own (JOB_EXPIRED, ...) carry no errorId and get 1.
func ResultAnswer(out enqueue.Outcome) Answer {
	switch out.State {
	case enqueue.StateSolved:
		a := Answer{Status: StatusReady, Solution: out.Solution, Cost: formatCost(out.Cost), SolveCount: out.Attempts}
		if len(a.Solution) == 0 {
			a.Solution = []byte("{}")
		}
		if !out.SubmittedAt.IsZero() {
			a.CreateTime = out.SubmittedAt.Unix()
		}
		if !out.FinishedAt.IsZero() {
			a.EndTime = out.FinishedAt.Unix()
		}
		if !out.ExpiresAt.IsZero() {
			a.ExpiresAt = out.ExpiresAt.Unix()
		}
		return a
	case enqueue.StateFailed, enqueue.StateDead:
		a := Answer{ErrorID: 1, ErrorCode: "UNKNOWN_ERROR", ErrorDescription: "the job ended " + string(out.State), Status: StatusFailed}
		if e := out.Error; e != nil {
			a.ErrorCode, a.ErrorDescription = e.ErrorCode, e.ErrorDescription
			if e.ErrorID == 1 || e.ErrorID == 2 {
				a.ErrorID = e.ErrorID
			}
		}
		return a
	default:
		return Answer{Status: StatusProcessing}
	}
}

// DialectResultAnswer is ResultAnswer as the createTask protocol answers getTaskResult: a failed
// or dead outcome's code is the anti-captcha dialect's where CodeTable has one (so that client
// libraries map it to a type they know, and the operator's AnySolver account errors never read as
// the client's own key or balance), the outcome's own code kept at the start of errorDescription.
func DialectResultAnswer(out enqueue.Outcome) Answer {
	a := ResultAnswer(out)
	if a.Status == StatusFailed && out.Error != nil {
		a.ErrorCode, a.ErrorDescription = outcomeRow(out.Error.ErrorCode).dialect(out.Error.ErrorDescription)
	}
	return a
}

// formatCost writes a cost as AnySolver does, a decimal string: at least four decimals
// ("0.0010"), more when the cost has them ("0.00025").
func formatCost(cost float64) string {
	s := strconv.FormatFloat(cost, 'f', -1, 64)
	whole, frac, _ := strings.Cut(s, ".")
	for len(frac) < 4 {
		frac += "0"
	}
	return whole + "." + frac
}

// validationAnswer turns a job that enqueue refused into the seed's nearest code, with the
// field named in the description.
func validationAnswer(err error, task map[string]any) *apiError {
	var v *enqueue.ValidationError
	if !errors.As(err, &v) {
		return badRequest(CodeInvalidTaskData, "%v", err)
	}
	code := CodeInvalidTaskData
	switch v.Field {
	case "task.websiteURL":
		code = CodeInvalidWebsite
	case "task.websiteKey", "task.websitePublicKey":
		code = CodeInvalidSitekey
	case "task.body":
		if _, present := task["body"]; present {
			code = CodeImageCorrupted
		}
	}
	return badRequest(code, "%s", v.Error())
}
