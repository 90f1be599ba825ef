package anysolvertest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/solvequeue/solvequeue/classify"
)

// wireAnswer is every answer the fake gives; errorId is always present.
type wireAnswer struct {
	ErrorID          int             `json:"errorId"`
	ErrorCode        string          `json:"errorCode,omitempty"`
	ErrorDescription string          `json:"errorDescription,omitempty"`
	TaskID           json.RawMessage `json:"taskId,omitempty"`
	Status           string          `json:"status,omitempty"`
	Solution         json.RawMessage `json:"solution,omitempty"`
	Cost             any             `json:"cost,omitempty"`
	CreateTime       int64           `json:"createTime,omitempty"`
	EndTime          int64           `json:"endTime,omitempty"`
	Balance          *float64        `json:"balance,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, a wireAnswer) {
	body, err := json.Marshal(a)
	if err != nil { // only a Solution that is not JSON could do this
		writeRaw(w, http.StatusInternalServerError, "text/plain; charset=utf-8", "fake: "+err.Error()+"\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError answers with errorCode code (HTTP 200, as AnySolver does). id 0 means the seed
// table's errorId (1 for codes it lacks); desc "" means the seed table's description.
func writeError(w http.ResponseWriter, code string, id int, desc string) {
	writeJSON(w, http.StatusOK, errorAnswer(code, id, desc))
}

func errorAnswer(code string, id int, desc string) wireAnswer {
	seed, known := seedTable()[code]
	if id == 0 {
		id = 1
		if known {
			id = seed.ErrorID
		}
	}
	if desc == "" {
		desc = "fake AnySolver answered " + code
		if known {
			desc = seed.Description
		}
	}
	return wireAnswer{ErrorID: id, ErrorCode: code, ErrorDescription: desc}
}

var seedTable = sync.OnceValue(func() map[string]classify.SeedCode {
	m := make(map[string]classify.SeedCode)
	for _, c := range classify.SeedCodes() {
		m[c.ErrorCode] = c
	}
	return m
})
