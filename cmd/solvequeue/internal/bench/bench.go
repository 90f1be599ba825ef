// Package bench is `solvequeue bench`: solvequeue's figures measured side by side with their
// baselines, in one process, on one Redis, against the fake AnySolver over loopback HTTP.
// It owns the workloads and the measuring; the pipeline it measures is the product's own
// (enqueue, worker), wired exactly as the CLI wires it.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/benchenv"
	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/fairness"
	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/gatewaybench"
	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/inflight"
	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/polling"
	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/spend"
	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/throughput"
)

// Report is the outcome of a run: the keys, then context. A figure of a section that
// did not run is null.
type Report = benchenv.Report

// Context says what the figures were measured on and how.
type Context = benchenv.Context

// Sections lists every section in running order.
var Sections = []string{benchenv.SectionThroughput, benchenv.SectionInflight, benchenv.SectionPolling, benchenv.SectionSubmit, benchenv.SectionSpend, benchenv.SectionGateway, benchenv.SectionGateway2, benchenv.SectionCluster, benchenv.SectionFairness}

// Options configure a run.
type Options struct {
	// RedisURL is the Redis to run on; "" starts a throwaway redis-server on a free loopback port.
	// On a Redis of one's own the bench uses queues named "bench-..." and deletes them afterwards;
	// on its own server it flushes the database between sections.
	RedisURL string
	// Quick runs every section at a small size (and the polling section on a tenth of the time
	// scale), for trying the bench and for tests. Its figures are not the issue's.
	Quick bool
	// Only runs these sections (names from Sections); empty runs all.
	Only []string
	// Binary is the solvequeue executable the in-flight section runs as its worker process and
	// the gateway2 section as its gateway processes. Defaults to os.Executable().
	Binary string
	// Progress receives one line per step. Defaults to io.Discard.
	Progress io.Writer
}

// Validate checks the options and names what is wrong.
func (o Options) Validate() error {
	for _, s := range o.Only {
		if !slices.Contains(Sections, s) {
			return fmt.Errorf("unknown section %q (want one of %s)", s, strings.Join(Sections, ", "))
		}
	}
	return nil
}

func (o Options) runs(section string) bool {
	return len(o.Only) == 0 || slices.Contains(o.Only, section)
}

// Run runs the bench and returns its report.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Binary == "" && (o.runs(benchenv.SectionInflight) || o.runs(benchenv.SectionGateway2)) {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the solvequeue binary for the bench's child processes: %w", err)
		}
		o.Binary = exe
	}
	started := time.Now()
	sz := benchenv.SizesFor(o.Quick)
	r := &Report{Context: Context{
		Machine: machine(), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Quick: o.Quick,
		StartedAt: started.UTC().Truncate(time.Second), SectionS: map[string]float64{},
		Sizes: map[string]int{}, Details: map[string]float64{},
	}}
	e, err := benchenv.NewEnv(ctx, benchenv.Config{RedisURL: o.RedisURL, Binary: o.Binary, Progress: o.Progress})
	if err != nil {
		return nil, err
	}
	defer e.Close()
	r.Context.Redis = e.RedisDesc
	e.Logf("bench: %s on %s, %s", map[bool]string{true: "quick run", false: "full run"}[o.Quick], r.Context.Machine, e.RedisDesc)

	steps := []struct {
		name string
		run  func(context.Context, *benchenv.Env, benchenv.Sizes, *Report) error
	}{
		{benchenv.SectionThroughput, throughput.Run},
		{benchenv.SectionInflight, inflight.Run},
		{benchenv.SectionPolling, polling.Run},
		{benchenv.SectionSubmit, throughput.RunSubmit},
		{benchenv.SectionSpend, spend.Run},
		{benchenv.SectionGateway, gatewaybench.Run},
		{benchenv.SectionGateway2, gatewaybench.RunTwoProcesses},
		{benchenv.SectionCluster, throughput.RunCluster},
		{benchenv.SectionFairness, fairness.Run},
	}
	for _, s := range steps {
		if !o.runs(s.name) {
			continue
		}
		if err := e.Reset(ctx); err != nil {
			return nil, err
		}
		began := time.Now()
		e.Logf("bench: [%s] starting", s.name)
		if err := s.run(ctx, e, sz, r); err != nil {
			return nil, fmt.Errorf("bench %s: %w", s.name, err)
		}
		r.Context.SectionS[s.name] = benchenv.Round(time.Since(began).Seconds(), 1)
		e.Logf("bench: [%s] done in %s", s.name, time.Since(began).Round(100*time.Millisecond))
	}
	if err := e.Reset(ctx); err != nil && !errors.Is(err, context.Canceled) {
		e.Logf("bench: cleaning up: %v", err)
	}
	for k, v := range e.Details() {
		r.Context.Details[k] = v
	}
	r.Context.DurationS = benchenv.Round(time.Since(started).Seconds(), 1)
	return r, nil
}

// machine describes the host: OS, architecture and CPU model.
func machine() string {
	m := runtime.GOOS + "/" + runtime.GOARCH
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				m += ", " + strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d CPUs", m, runtime.NumCPU())
}
