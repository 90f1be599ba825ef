package rig

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// Fake is the fake AnySolver served on a free 127.0.0.1 port.
type Fake struct {
	*anysolvertest.Server
	// URL is its base URL, http://127.0.0.1:PORT.
	URL string

	srv *http.Server
}

// StartFake serves a fake AnySolver made with o on loopback.
func StartFake(o anysolvertest.Options) (*Fake, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("serve the fake AnySolver: %w", err)
	}
	f := &Fake{Server: anysolvertest.New(o), URL: "http://" + ln.Addr().String()}
	f.srv = &http.Server{Handler: f.Server, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

// Close releases the requests the fake holds (its hang and endless faults) and stops serving.
func (f *Fake) Close() {
	f.Server.Close()
	_ = f.srv.Close()
}
