package gatewaybench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/benchenv"
)

// gatewayProcess is a `solvequeue gateway` child process on the bench's Redis.
type gatewayProcess struct {
	cmd     *exec.Cmd
	addr    string // where it serves the API, host:port on loopback
	mu      sync.Mutex
	lines   []string // the last lines of its log
	exited  chan struct{}
	stopped sync.Once
}

// servingURL finds the address in the gateway's "serving AnySolver's API" line, text or JSON.
var servingURL = regexp.MustCompile(`http://(127\.0\.0\.1:[0-9]+)/`)

// startGatewayProcess runs `solvequeue gateway` with keysFile on a free loopback port (the
// kernel picks it: --addr 127.0.0.1:0, read back from the start line) and GOMAXPROCS=procs, and
// returns once it serves. The child gets none of the caller's SOLVEQUEUE_ or ANYSOLVER_
// variables, so that it runs as configured here and nowhere else.
func startGatewayProcess(ctx context.Context, e *benchenv.Env, keysFile string, procs int) (*gatewayProcess, error) {
	cmd := exec.Command(e.Config.Binary, "gateway", "--addr", "127.0.0.1:0", "--keys", keysFile, "--log-format", "json")
	envv := []string{}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SOLVEQUEUE_") || strings.HasPrefix(kv, "REDIS_URL=") ||
			strings.HasPrefix(kv, "ANYSOLVER_") || strings.HasPrefix(kv, "GOMAXPROCS=") {
			continue
		}
		envv = append(envv, kv)
	}
	cmd.Env = append(envv, "REDIS_URL="+e.Redis.URL, "GOMAXPROCS="+strconv.Itoa(procs))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the gateway process %s: %w", e.Config.Binary, err)
	}
	p := &gatewayProcess{cmd: cmd, exited: make(chan struct{})}
	serving := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "serving AnySolver's API") {
				if m := servingURL.FindStringSubmatch(line); m != nil {
					select {
					case serving <- m[1]:
					default:
					}
				}
			}
			p.mu.Lock()
			p.lines = append(p.lines, line)
			if len(p.lines) > 40 {
				p.lines = p.lines[len(p.lines)-20:]
			}
			p.mu.Unlock()
		}
		_ = cmd.Wait()
		close(p.exited)
	}()
	select {
	case p.addr = <-serving:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("the gateway process exited at start:\n%s", p.tail())
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("the gateway process did not start in 30 s:\n%s", p.tail())
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
}

// tail is the end of the process's log, for error messages.
func (p *gatewayProcess) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := min(len(p.lines), 10)
	return "gateway log (last lines):\n  " + strings.Join(p.lines[len(p.lines)-n:], "\n  ")
}

// stop ends the process with SIGTERM (SIGKILL after 30 s) and waits for it.
func (p *gatewayProcess) stop() {
	p.stopped.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on every
// Linux architecture Go runs on.
const clockTicks = 100

// cpu is the user and system CPU time the running process has used so far, from /proc/PID/stat
// (10 ms resolution); 0 where /proc does not tell.
func (p *gatewayProcess) cpu() time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 { // utime and stime are fields 14 and 15, f[11] and f[12] here
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * time.Second / clockTicks
}
