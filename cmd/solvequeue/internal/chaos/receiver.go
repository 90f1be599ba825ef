package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// delivery is one callback the receiver accepted.
type delivery struct {
	At         time.Time
	Status     string // ready or failed
	ErrorCode  string
	OutcomeSeq int // the body's outcomeSeq; 0 when the body has none
	Token      string
}

// receiver is the callback receiver on 127.0.0.1: it answers 503 to every delivery until
// refuseUntil, then accepts and keeps every delivery, duplicates included, per job id.
type receiver struct {
	URL         string
	refuseUntil time.Time
	refused     atomic.Int64

	srv *http.Server
	mu  sync.Mutex
	got map[string][]delivery
}

func startReceiver(refuseUntil time.Time) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("serve the callback receiver: %w", err)
	}
	r := &receiver{URL: "http://" + ln.Addr().String() + "/callback", refuseUntil: refuseUntil, got: map[string][]delivery{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// ServeHTTP refuses or keeps one delivery.
func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	if time.Now().Before(r.refuseUntil) {
		r.refused.Add(1)
		http.Error(w, "not yet", http.StatusServiceUnavailable)
		return
	}
	var b struct {
		ID         string `json:"id"`
		Status     string `json:"status"`
		ErrorCode  string `json:"errorCode"`
		OutcomeSeq int    `json:"outcomeSeq"`
		Solution   struct {
			Token string `json:"token"`
		} `json:"solution"`
	}
	if err := json.Unmarshal(body, &b); err != nil || b.ID == "" {
		http.Error(w, "not a callback body", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.got[b.ID] = append(r.got[b.ID], delivery{At: time.Now(), Status: b.Status, ErrorCode: b.ErrorCode,
		OutcomeSeq: b.OutcomeSeq, Token: b.Solution.Token})
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// deliveries returns a copy of the deliveries kept for a job.
func (r *receiver) deliveries(id string) []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got[id]...)
}

func (r *receiver) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, d := range r.got {
		n += len(d)
	}
	return n
}

func (r *receiver) close() { _ = r.srv.Close() }
