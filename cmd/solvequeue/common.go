package main

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/clilog"
	"github.com/solvequeue/solvequeue/internal/redisconn"
)

// redisOptions are the flags of every command that talks to Redis.
type redisOptions struct {
	URL string
}

func (o *redisOptions) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.URL, "redis", redisconn.DefaultURL, "Redis URL: redis://[user:password@]host:port/db, rediss:// for TLS, redis-sentinel://host:port[,host:port...]?master=NAME, redis-cluster://host:port[,host:port...]")
}

func (o *redisOptions) open(ctx context.Context, poolSize int) (redis.UniversalClient, error) {
	return redisconn.Open(ctx, o.URL, poolSize)
}

// logOptions are the logging flags.
type logOptions struct {
	Level  string
	Format string
}

func (o *logOptions) register(cmd *cobra.Command, defaultLevel string) {
	cmd.Flags().StringVar(&o.Level, "log-level", defaultLevel, "log level: debug, info, warn or error")
	cmd.Flags().StringVar(&o.Format, "log-format", "auto", "log format: text, json, or auto (text on a terminal, JSON otherwise)")
}

func (o *logOptions) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.Level)); err != nil {
		return nil, usageError("--log-level %q: want debug, info, warn or error", o.Level)
	}
	switch o.Format {
	case "text":
		return clilog.New(w, clilog.Text, level), nil
	case "json":
		return clilog.New(w, clilog.JSON, level), nil
	case "auto", "":
		if isTerminal(w) {
			return clilog.New(w, clilog.Text, level), nil
		}
		return clilog.New(w, clilog.JSON, level), nil
	default:
		return nil, usageError("--log-format %q: want text, json or auto", o.Format)
	}
}

// isTerminal reports whether a stream (an Env's Stdin, Stdout or Stderr) is a terminal.
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// outputOptions choose between a table for people and JSON for programs.
type outputOptions struct {
	JSON bool
}

func (o *outputOptions) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print JSON instead of a table")
}
