package anysolvertest

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
)

// Fault is a transport-level misbehaviour the fake can answer with instead of AnySolver JSON:
// what proxies, overloaded servers and broken networks give real clients.
type Fault string

// The faults. A body is sent with HTTP 200 unless said otherwise.
const (
	FaultNone       Fault = ""
	FaultHTML502    Fault = "html502"    // 502 with a proxy's HTML page
	FaultHTTP503    Fault = "http503"    // 503 with a plain-text body
	FaultHTTP429    Fault = "http429"    // 429 with Retry-After: 5 and a plain-text body
	FaultGarbage    Fault = "garbage"    // bytes that are not JSON
	FaultTruncated  Fault = "truncated"  // a JSON answer cut short (Content-Length matches)
	FaultWrongShape Fault = "wrongshape" // valid JSON, but an array instead of an object
	FaultHuge       Fault = "huge"       // a valid 10 MB JSON answer
	FaultEndless    Fault = "endless"    // a body streamed until the client leaves
	FaultHang       Fault = "hang"       // no headers until the client leaves
	FaultReset      Fault = "reset"      // the connection closed with RST (SetLinger(0))
)

// HugeBodyBytes is the size of FaultHuge's body.
const HugeBodyBytes = 10 << 20

// ParseFault returns the Fault named s, or false.
func ParseFault(s string) (Fault, bool) {
	switch f := Fault(s); f {
	case FaultHTML502, FaultHTTP503, FaultHTTP429, FaultGarbage, FaultTruncated, FaultWrongShape,
		FaultHuge, FaultEndless, FaultHang, FaultReset:
		return f, true
	}
	return FaultNone, false
}

const html502 = `<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx</center>
</body>
</html>
`

// padChunk is what FaultHuge and FaultEndless repeat.
var padChunk = bytes.Repeat([]byte("a"), 32<<10)

// serveFault answers r with fault f. Faults that stream or wait end when the client leaves or
// the Server is closed.
func (s *Server) serveFault(w http.ResponseWriter, r *http.Request, f Fault) {
	switch f {
	case FaultHTML502:
		writeRaw(w, http.StatusBadGateway, "text/html", html502)
	case FaultHTTP503:
		w.Header().Set("Retry-After", "30")
		writeRaw(w, http.StatusServiceUnavailable, "text/plain; charset=utf-8", "Service Unavailable\n")
	case FaultHTTP429:
		w.Header().Set("Retry-After", "5")
		writeRaw(w, http.StatusTooManyRequests, "text/plain; charset=utf-8", "Too Many Requests\n")
	case FaultGarbage:
		writeRaw(w, http.StatusOK, "application/json", "\x00\x1f\x8b garbage \xff\xfe not json")
	case FaultTruncated:
		writeRaw(w, http.StatusOK, "application/json", `{"errorId":0,"status":"ready","taskId":"7f3a9c`)
	case FaultWrongShape:
		writeRaw(w, http.StatusOK, "application/json", `[{"errorId":0,"taskId":1,"status":"ready"}]`)
	case FaultHuge:
		s.serveHuge(w, r)
	case FaultEndless:
		s.serveEndless(w, r)
	case FaultHang:
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
	case FaultReset:
		reset(w)
	default:
		writeRaw(w, http.StatusInternalServerError, "text/plain; charset=utf-8", "unknown fault "+strconv.Quote(string(f))+"\n")
	}
}

func writeRaw(w http.ResponseWriter, status int, contentType, body string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// serveHuge writes a valid JSON answer of HugeBodyBytes, declared in Content-Length.
func (s *Server) serveHuge(w http.ResponseWriter, r *http.Request) {
	head, tail := []byte(`{"errorId":0,"taskId":1,"pad":"`), []byte(`"}`)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(HugeBodyBytes))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(head); err != nil {
		return
	}
	for left := HugeBodyBytes - len(head) - len(tail); left > 0; {
		if s.gone(r) {
			return
		}
		n := min(left, len(padChunk))
		if _, err := w.Write(padChunk[:n]); err != nil {
			return
		}
		left -= n
	}
	_, _ = w.Write(tail)
}

// serveEndless streams a JSON string that never ends, without Content-Length.
func (s *Server) serveEndless(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if _, err := w.Write([]byte(`{"errorId":0,"pad":"`)); err != nil {
		return
	}
	for !s.gone(r) {
		if _, err := w.Write(padChunk); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// gone reports whether the client left or the Server was closed.
func (s *Server) gone(r *http.Request) bool {
	select {
	case <-r.Context().Done():
		return true
	case <-s.closed:
		return true
	default:
		return false
	}
}

// reset closes the connection under the request with an RST. Where the connection cannot be
// taken over (HTTP/2), it aborts the stream instead.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}
