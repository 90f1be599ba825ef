// Command solvequeue solves captchas through AnySolver from a Redis-backed asynq queue: run
// workers, submit jobs one by one or in batches, read outcomes, redrive dead letters, and try
// the whole pipeline with `solvequeue demo`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// go-redis writes a raw line of its own for every failed dial (five before the clean "no
	// Redis at ..." of a wrong port, and more each second while Redis is down). What they say
	// is said once and better: by each command's error, and by redisconn.Health in the worker
	// and batch. Its logger is the library's global, so it is set here, once, before any command.
	redis.SetLogger(silentRedisLog{})
	env := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Name: commandName(os.Args[0])}
	os.Exit(run(ctx, env, os.Args[1:]))
}

// Env is what a command may touch of the outside world; tests pass their own.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Name is the command as the user typed it, for the hints that name it ("next: solvequeue
	// policy"); "" reads as "solvequeue".
	Name string
}

// name is the command as the user typed it: see Env.Name.
func (e *Env) name() string {
	if e.Name == "" {
		return "solvequeue"
	}
	return e.Name
}

// commandName is how a user runs this binary again, from its os.Args[0]: "go run
// ./cmd/solvequeue" for the binary go run built in its temporary directory (and removes after),
// or the path as typed ("solvequeue" from PATH, "./solvequeue").
func commandName(arg0 string) string {
	dir := filepath.Dir(arg0)
	if filepath.Base(dir) == "exe" && strings.HasPrefix(filepath.Base(filepath.Dir(dir)), "b0") &&
		strings.HasPrefix(filepath.Base(filepath.Dir(filepath.Dir(dir))), "go-build") {
		return "go run ./cmd/solvequeue"
	}
	if arg0 == "" {
		return "solvequeue"
	}
	return arg0
}

// ExitError carries a specific exit status (2 for bad input).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// usageError marks bad input: exit status 2.
func usageError(format string, args ...any) error {
	return &ExitError{Code: 2, Err: fmt.Errorf(format, args...)}
}

func run(ctx context.Context, env *Env, args []string) int {
	root := newRootCmd(env)
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(env.Stderr, "solvequeue:", err)
	var exit *ExitError
	if errors.As(err, &exit) {
		return exit.Code
	}
	return 1
}

// silentRedisLog is go-redis's logger in the binary: it drops go-redis's own lines.
type silentRedisLog struct{}

func (silentRedisLog) Printf(context.Context, string, ...any) {}
