package chaos

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// workerProc is one `solvequeue worker` subprocess: its life and the budget cap it read.
type workerProc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	cap     int // the budgeted queue's maxCreateTasks in the policy it started with
	started time.Time
	ended   time.Time // zero while it runs
	done    chan struct{}
}

// workerSet starts and stops the workers, keeping every process it ran for the budget check.
type workerSet struct {
	binary string
	dir    string
	env    []string
	args   []string
	all    []*workerProc
}

// start runs worker slot i and waits until it says it started.
func (s *workerSet) start(ctx context.Context, slot int, cap int) (*workerProc, error) {
	n := len(s.all)
	p := &workerProc{name: fmt.Sprintf("worker%d", slot+1), cap: cap, done: make(chan struct{}),
		logPath: filepath.Join(s.dir, fmt.Sprintf("worker%d-run%d.log", slot+1, n))}
	logf, err := os.Create(p.logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd = exec.Command(s.binary, append([]string{"worker"}, s.args...)...)
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = s.env, logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", p.name, err)
	}
	s.all = append(s.all, p)
	go func() {
		_ = p.cmd.Wait()
		logf.Close()
		p.ended = time.Now()
		close(p.done)
	}()
	for {
		if b, _ := os.ReadFile(p.logPath); bytes.Contains(b, []byte(`"worker started"`)) {
			return p, nil
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.logPath)
			return nil, fmt.Errorf("%s exited before it started; its log:\n%s", p.name, tailBytes(b, 2000))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kill ends p with SIGKILL, as a crash would, and waits for it.
func (p *workerProc) kill() time.Time {
	_ = p.cmd.Process.Kill()
	<-p.done
	return p.ended
}

// stop ends p with SIGTERM (a graceful hand-back), SIGKILL after within.
func (p *workerProc) stop(within time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(within):
		p.kill()
	}
}

// capAt is the highest cap among the workers alive at t: what the budget allowed then.
func (s *workerSet) capAt(t time.Time) int {
	c := 0
	for _, p := range s.all {
		if !t.Before(p.started) && (p.ended.IsZero() || !t.After(p.ended)) {
			c = max(c, p.cap)
		}
	}
	return c
}

func tailBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
