package benchenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Child is a child process of the bench's own binary on the bench's Redis (a worker, plain
// asynq's in-flight floor, a gateway), whose memory and CPU are its own. The bench keeps the
// end of its log for error messages.
type Child struct {
	name     string
	cmd      *exec.Cmd
	mu       sync.Mutex
	lines    []string // the last lines of its log
	exited   chan struct{}
	stopped  sync.Once
	maxRSSMB float64 // from rusage, once it exited
}

// ChildConfig says how to run a Child.
type ChildConfig struct {
	// Name names the child in error messages: "worker", "gateway".
	Name string
	// Args are its command line, after the binary.
	Args []string
	// Env is added to its environment after REDIS_URL; a later value of a name wins.
	Env []string
	// KeepPprof passes the caller's SOLVEQUEUE_PPROF on, so that the child serves Go's profiles
	// (one child at a time: two would want the same address).
	KeepPprof bool
	// Ready says whether a line of its log says it is ready, and what the line tells (an
	// address, say).
	Ready func(line string) (string, bool)
}

// childStartLimit bounds the wait for a child's ready line.
const childStartLimit = 30 * time.Second

// StartChild runs the bench's binary as c says and returns once its log says it is ready, with
// what the ready line told. The child gets none of the caller's SOLVEQUEUE_ (but
// SOLVEQUEUE_PPROF with KeepPprof), ANYSOLVER_ or REDIS_URL variables, so that it runs as
// configured here and nowhere else.
func (e *Env) StartChild(ctx context.Context, c ChildConfig) (*Child, string, error) {
	cmd := exec.Command(e.Config.Binary, c.Args...)
	var env []string
	for _, kv := range os.Environ() {
		pprof := strings.HasPrefix(kv, "SOLVEQUEUE_PPROF=")
		if (strings.HasPrefix(kv, "SOLVEQUEUE_") && !(pprof && c.KeepPprof)) ||
			strings.HasPrefix(kv, "REDIS_URL=") || strings.HasPrefix(kv, "ANYSOLVER_") {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(append(env, "REDIS_URL="+e.Redis.URL), c.Env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, "", err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start the %s process %s: %w", c.Name, e.Config.Binary, err)
	}
	p := &Child{name: c.Name, cmd: cmd, exited: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if told, ok := c.Ready(line); ok {
				select {
				case ready <- told:
				default:
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
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
			kb := float64(ru.Maxrss)
			if runtime.GOOS == "darwin" {
				kb /= 1024 // bytes there
			}
			p.maxRSSMB = kb / 1024
		}
		close(p.exited)
	}()
	select {
	case told := <-ready:
		return p, told, nil
	case <-p.exited:
		return nil, "", fmt.Errorf("the %s process exited at start:\n%s", c.Name, p.Tail())
	case <-time.After(childStartLimit):
		p.Stop()
		return nil, "", fmt.Errorf("the %s process did not start in %s:\n%s", c.Name, childStartLimit, p.Tail())
	case <-ctx.Done():
		p.Stop()
		return nil, "", ctx.Err()
	}
}

// Tail is the end of the child's log, for error messages.
func (p *Child) Tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := min(len(p.lines), 10)
	return p.name + " log (last lines):\n  " + strings.Join(p.lines[len(p.lines)-n:], "\n  ")
}

// Stop ends the child with SIGTERM (SIGKILL after 30 s) and waits for it.
func (p *Child) Stop() {
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

// RSSMB is the child's current RSS; 0 where /proc does not tell.
func (p *Child) RSSMB() float64 {
	v, _ := procStatusKB(p.cmd.Process.Pid, "VmRSS:")
	return v / 1024
}

// PeakRSSMB is the child's peak RSS so far and how it was read: VmHWM while it runs, else the
// rusage of a child that has exited (it stops the child to read it).
func (p *Child) PeakRSSMB() (float64, string) {
	if v, err := procStatusKB(p.cmd.Process.Pid, "VmHWM:"); err == nil {
		return v / 1024, "VmHWM"
	}
	p.Stop()
	return p.maxRSSMB, "ru_maxrss"
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on every
// Linux architecture Go runs on.
const clockTicks = 100

// CPU is the user and system CPU time the running child has used so far, from /proc/PID/stat
// (10 ms resolution); 0 where /proc does not tell.
func (p *Child) CPU() time.Duration {
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

// procStatusKB reads one "Name: N kB" line of /proc/PID/status.
func procStatusKB(pid int, name string) (float64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseFloat(f[0], 64)
		}
	}
	return 0, errors.New(name + " not in /proc status")
}

// LineHas is a ChildConfig.Ready that finds a line holding s.
func LineHas(s string) func(string) (string, bool) {
	return func(line string) (string, bool) { return "", strings.Contains(line, s) }
}
