// Package redisserver starts throwaway redis-server processes for the bench, the soak and
// tests, each on its own free port and data directory. It owns nothing of solvequeue's
// queues: it only gives them a real Redis to run against. It does not import testing, so the
// binary may link it; enqueuetest wraps it for tests (skip or fail when it is missing).
package redisserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// ErrNotInstalled means the redis-server binary is not installed.
var ErrNotInstalled = errors.New("redis-server not found: install redis-server (apt-get install redis-server)")

const (
	// readyTimeout bounds the wait for a started server to answer PING.
	readyTimeout = 10 * time.Second
	// stopTimeout bounds the wait for a SIGTERM before a SIGKILL.
	stopTimeout = 10 * time.Second
	// logName is the child's stdout and stderr, in its data directory.
	logName = "redis-server.log"
	// confName is the configuration file written from Options.Config, in the data directory.
	confName = "redis.conf"
	// logTail is how much of the log an error quotes.
	logTail = 2048
)

// Options configures a Server. The zero value is a server without
// persistence on a free port in a new temporary directory.
type Options struct {
	AppendOnly  bool     // turn the append-only file on; off by default, and RDB snapshots are always off
	AppendFsync string   // with AppendOnly: "always" or "everysec" (the default)
	Port        int      // 0 picks a free port
	Dir         string   // the data directory; "" makes a temporary one, which Stop removes
	Args        []string // extra redis-server arguments, such as "--maxmemory", "10mb"
	Binary      string   // the server binary; "" looks up redis-server on PATH
	// Config, when set, is written to redis.conf in the data directory and given to the server
	// as its configuration file (a Sentinel needs one it can rewrite); Args still apply.
	Config string
	// Password is what the server asks of clients when Config or Args set its requirepass:
	// the readiness check logs in with it. It sets nothing on the server.
	Password string
}

// Server is a redis-server child process on 127.0.0.1 with its own data directory.
// Its methods are safe for concurrent use.
type Server struct {
	Addr string // "127.0.0.1:port"
	Dir  string // the data directory, which also holds the server's log

	bin      string
	conf     string // the configuration file's path, or ""
	password string // for the readiness check (Options.Password)
	args     []string
	port     int
	ownDir   bool
	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has exited
	stopped  bool
}

// Start starts redis-server and waits, at most 10 s or until ctx ends, until it
// answers PING. Options are checked first, so a wrong one is reported whether or not
// redis-server is installed. Without redis-server it returns an error wrapping
// ErrNotInstalled. A server that does not come up is killed, and the error quotes the
// end of its log.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := opts.check(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	path, err := LookPath(opts.Binary)
	if err != nil {
		return nil, err
	}
	s := &Server{bin: path, Dir: opts.Dir, password: opts.Password}
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "solvequeue-redis-"); err != nil {
			return nil, fmt.Errorf("start redis-server: %w", err)
		}
		s.ownDir = true
	}
	s.args = serverArgs(s.Dir, opts)
	if opts.Config != "" {
		s.conf = filepath.Join(s.Dir, confName)
		if err := os.WriteFile(s.conf, []byte(opts.Config), 0o600); err != nil {
			s.removeDir()
			return nil, fmt.Errorf("start redis-server: %w", err)
		}
	}

	// A free port may be taken by someone else before redis-server binds it: try again.
	for attempt := 0; ; attempt++ {
		s.port = opts.Port
		if s.port == 0 {
			if s.port, err = freePort(); err != nil {
				s.removeDir()
				return nil, fmt.Errorf("start redis-server: %w", err)
			}
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		err = s.start(ctx)
		if err == nil {
			return s, nil
		}
		if opts.Port != 0 || attempt == 2 || !bytes.Contains(s.readLog(), []byte("Address already in use")) {
			s.removeDir()
			return nil, err
		}
	}
}

// check says what is wrong with opts, without looking for the binary.
func (opts Options) check() error {
	switch opts.AppendFsync {
	case "", "always", "everysec":
	default:
		return fmt.Errorf("AppendFsync must be \"always\" or \"everysec\", got %q", opts.AppendFsync)
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return fmt.Errorf("Port must be between 0 and 65535, got %d", opts.Port)
	}
	return nil
}

// LookPath returns the path of the server binary bin ("" for redis-server on PATH), or an
// error wrapping ErrNotInstalled.
func LookPath(bin string) (string, error) {
	if bin == "" {
		bin = "redis-server"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("%w (%v)", ErrNotInstalled, err)
	}
	return path, nil
}

// serverArgs returns redis-server's arguments, the port excepted.
func serverArgs(dir string, opts Options) []string {
	args := []string{
		"--bind", "127.0.0.1",
		"--protected-mode", "no",
		"--dir", dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", "",
	}
	if opts.AppendOnly {
		fsync := opts.AppendFsync
		if fsync == "" {
			fsync = "everysec"
		}
		args = append(args, "--appendonly", "yes", "--appendfsync", fsync)
	}
	return append(args, opts.Args...)
}

// freePort asks the kernel for a port nobody listens on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs the process on s.port and waits for PING.
func (s *Server) start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(s.Dir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	defer logf.Close() // the child keeps its own copy
	var args []string
	if s.conf != "" {
		args = append(args, s.conf) // a configuration file must come first
	}
	args = append(append(args, "--port", strconv.Itoa(s.port)), s.args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	if err := waitReady(ctx, s.Addr, s.password, cmd.Process.Pid, exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("redis-server on %s: %w; its log ends:\n%s", s.Addr, err, s.readLog())
	}
	return nil
}

// waitReady waits until the server started as pid answers PING, the process
// exits, ctx ends or readyTimeout passes. It checks the answering server's
// process ID: another server may hold the port, and its PING proves nothing.
func waitReady(ctx context.Context, addr, password string, pid int, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var c *redis.Client
	defer func() {
		if c != nil {
			_ = c.Close()
		}
	}()
	last := errors.New("not listening yet")
	for {
		// Dial first: go-redis logs every failed dial, and a starting server refuses many.
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
			last = err
		} else {
			_ = conn.Close()
			if c == nil {
				c = redis.NewClient(clientOptions(addr, password))
			}
			last = checkPID(ctx, c, pid)
			if last == nil {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("exited before answering PING")
		case <-ctx.Done():
			return fmt.Errorf("no answer to PING: %w (last error: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// checkPID pings the server at c and checks that it runs as pid.
func checkPID(ctx context.Context, c *redis.Client, pid int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return err
	}
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			if v == strconv.Itoa(pid) {
				return nil
			}
			return fmt.Errorf("another redis-server (pid %s) answers on %s", v, c.Options().Addr)
		}
	}
	return errors.New("INFO server has no process_id")
}

// newClient is a quiet go-redis client for addr.
func newClient(addr string) *redis.Client { return redis.NewClient(clientOptions(addr, "")) }

// clientOptions are the options of the package's own clients: one connection, no retries, a
// short dial, none of go-redis's extras (CLIENT SETINFO, maintenance notifications).
func clientOptions(addr, password string) *redis.Options {
	return &redis.Options{
		Addr:                     addr,
		Password:                 password,
		DialTimeout:              time.Second,
		MaxRetries:               -1,
		PoolSize:                 1,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
}

// URL returns the server's address as a Redis URL, "redis://127.0.0.1:port".
func (s *Server) URL() string { return "redis://" + s.Addr }

// Stop ends the server for good: SIGTERM, up to 10 s of grace, then SIGKILL. It
// removes the data directory if Start made it. Calling Stop again is a no-op.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	err := s.terminate()
	s.removeDir()
	return err
}

// Kill ends the process with SIGKILL, as a crash would, keeping its data for Restart.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || isDone(s.exited) {
		return nil
	}
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill redis-server on %s: %w", s.Addr, err)
	}
	<-s.exited
	return nil
}

// Restart stops the server gracefully if it is running, then starts it again on
// the same port and data directory and waits for PING. What survives depends
// on the persistence chosen: with AppendOnly, every acknowledged write with
// AppendFsync "always", and all but about the last second with "everysec".
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return fmt.Errorf("restart redis-server on %s: it was stopped for good", s.Addr)
	}
	err := s.terminate()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.start(ctx)
}

// terminate sends SIGTERM and waits, then SIGKILL. s.mu must be held.
func (s *Server) terminate() error {
	if s.cmd == nil || isDone(s.exited) {
		return nil
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop redis-server on %s: %w", s.Addr, err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	return fmt.Errorf("stop redis-server on %s: no exit %v after SIGTERM, killed", s.Addr, stopTimeout)
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (s *Server) removeDir() {
	if s.ownDir {
		_ = os.RemoveAll(s.Dir)
	}
}

// readLog returns the end of the server's log.
func (s *Server) readLog() []byte {
	f, err := os.Open(filepath.Join(s.Dir, logName))
	if err != nil {
		return nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > logTail {
		_, _ = f.Seek(-logTail, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return b
}
