package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/solvequeue/solvequeue/enqueue"
)

func newDLQCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, redrive or purge the dead-letter queue",
		Long: `The dead-letter queue holds the jobs that need an operator: retries or the
deadline exhausted, or an error no retry can fix (a bad key, an unknown provider
error). It is durable: unlike asynq's archive it is never trimmed silently.

Fix the cause, then redrive: each job gets a fresh task with a fresh retry budget
and keeps its ID.`,
		Example: `  solvequeue dlq list
  solvequeue dlq redrive order-42
  solvequeue dlq redrive --all
  solvequeue dlq purge order-43`,
	}
	cmd.AddCommand(newDLQListCmd(env), newDLQRedriveCmd(env), newDLQPurgeCmd(env))
	return cmd
}

func newDLQListCmd(env *Env) *cobra.Command {
	var (
		redisOpt redisOptions
		out      outputOptions
	)
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List dead jobs with their last error",
		Example: "  solvequeue dlq list\n  solvequeue dlq list --json | jq .",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, closeFn, err := openClient(cmd, &redisOpt)
			if err != nil {
				return err
			}
			defer closeFn()
			letters, err := client.DeadLetters(cmd.Context())
			if err != nil {
				return err
			}
			if out.JSON {
				enc := json.NewEncoder(env.Stdout)
				for _, d := range letters {
					o := d.Outcome()
					if err := enc.Encode(o); err != nil {
						return err
					}
				}
				return nil
			}
			if len(letters) == 0 {
				fmt.Fprintln(env.Stdout, "the dead-letter queue is empty")
				return nil
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tQUEUE\tDEAD AT\tCODE\tATTEMPTS\tERROR")
			for _, d := range letters {
				code, desc := "", ""
				if e := d.Record.Error; e != nil {
					code, desc = e.ErrorCode, e.ErrorDescription
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", d.ID, d.Queue, d.DeadAt.Format(time.RFC3339), code, d.Record.Attempts, truncate(desc, 80))
			}
			return tw.Flush()
		},
	}
	redisOpt.register(cmd)
	out.register(cmd)
	return cmd
}

func newDLQRedriveCmd(env *Env) *cobra.Command {
	var (
		redisOpt redisOptions
		all      bool
	)
	cmd := &cobra.Command{
		Use:   "redrive [ID...] [--all]",
		Short: "Run dead jobs again with a fresh retry budget",
		Example: `  solvequeue dlq redrive order-42 order-43
  solvequeue dlq redrive --all`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachDeadLetter(cmd, env, &redisOpt, args, all, "redriven", func(c *enqueue.Client, d enqueue.DeadLetter) error {
				return c.Redrive(cmd.Context(), d)
			})
		},
	}
	redisOpt.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "redrive every dead job (command line only: each one is paid for again)")
	_ = cmd.Flags().SetAnnotation("all", noEnvAnnotation, []string{"true"})
	return cmd
}

func newDLQPurgeCmd(env *Env) *cobra.Command {
	var (
		redisOpt redisOptions
		all      bool
	)
	cmd := &cobra.Command{
		Use:   "purge [ID...] [--all]",
		Short: "Delete dead jobs for good",
		Example: `  solvequeue dlq purge order-42
  solvequeue dlq purge --all`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachDeadLetter(cmd, env, &redisOpt, args, all, "purged", func(c *enqueue.Client, d enqueue.DeadLetter) error {
				n, err := c.Purge(cmd.Context(), []enqueue.DeadLetter{d})
				if err == nil && n == 0 {
					return fmt.Errorf("%w: %q left the dead-letter queue already", enqueue.ErrJobNotFound, d.ID)
				}
				return err
			})
		},
	}
	redisOpt.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "purge every dead job (command line only: no environment variable)")
	_ = cmd.Flags().SetAnnotation("all", noEnvAnnotation, []string{"true"})
	return cmd
}

// eachDeadLetter applies fn to the named dead letters (or all of them with --all).
func eachDeadLetter(cmd *cobra.Command, env *Env, redisOpt *redisOptions, ids []string, all bool, done string,
	fn func(*enqueue.Client, enqueue.DeadLetter) error) error {
	if all == (len(ids) > 0) {
		return usageError("name the dead jobs by ID, or give --all (not both)")
	}
	client, closeFn, err := openClient(cmd, redisOpt)
	if err != nil {
		return err
	}
	defer closeFn()
	letters, err := client.DeadLetters(cmd.Context())
	if err != nil {
		return err
	}
	byID := map[string]enqueue.DeadLetter{}
	for _, d := range letters {
		byID[d.ID] = d
	}
	targets := letters
	if !all {
		targets = nil
		for _, id := range ids {
			d, ok := byID[id]
			if !ok {
				return usageError("%q is not in the dead-letter queue (see 'solvequeue dlq list')", id)
			}
			targets = append(targets, d)
		}
	}
	n, gone := 0, 0
	for _, d := range targets {
		err := fn(client, d)
		switch {
		case errors.Is(err, enqueue.ErrJobNotFound):
			// Someone else redrove or purged it since the list was read: nothing to do.
			gone++
		case err != nil:
			fmt.Fprintf(env.Stdout, "%s %s\n", plural(n, "job"), done)
			return err
		default:
			n++
		}
	}
	fmt.Fprintf(env.Stdout, "%s %s\n", plural(n, "job"), done)
	if gone > 0 {
		fmt.Fprintf(env.Stdout, "%s had left the dead-letter queue meanwhile (redriven or purged elsewhere)\n", plural(gone, "job"))
	}
	return nil
}

func openClient(cmd *cobra.Command, redisOpt *redisOptions) (*enqueue.Client, func(), error) {
	rc, err := redisOpt.open(cmd.Context(), 0)
	if err != nil {
		return nil, nil, err
	}
	client, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	if err != nil {
		rc.Close()
		return nil, nil, err
	}
	return client, func() { rc.Close() }, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
