package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/words"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
)

func newDLQCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, redrive or purge the dead-letter queue",
		Long: `The dead-letter queue holds the jobs that need an operator: retries or the
deadline exhausted, or an error no retry can fix (a bad key, an unknown provider
error). It is durable: unlike asynq's archive it is never trimmed silently.

Fix the cause, then redrive: each job gets a fresh task with a fresh retry budget
and keeps its ID. A failed job is no dead letter, but 'dlq redrive --failed ID' runs
one again when its cause is gone (a top-up after ERROR_ZERO_BALANCE).`,
		Example: `  solvequeue dlq list
  solvequeue dlq redrive order-42
  solvequeue dlq redrive --all
  solvequeue dlq purge order-43
  solvequeue dlq redrive --failed order-44   # a failed job, by your choice`,
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
			client, closeFn, err := openAdmin(cmd, &redisOpt)
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
		failed   bool
		queue    string
	)
	cmd := &cobra.Command{
		Use:   "redrive [ID...] [--all] [--failed ID...]",
		Short: "Run dead jobs again with a fresh retry budget (or, with --failed, failed ones)",
		Long: `Run dead jobs again: each gets a fresh task with a fresh retry budget and keeps its ID.
Each one is paid for again: fix the cause first.

A failed job is not a dead letter: it can never succeed as submitted, so nothing runs it
again by itself. When its cause was outside the job after all (ERROR_ZERO_BALANCE before a
top-up, a ban since lifted), --failed runs the failed jobs you name again, one by one: never
--all, always your explicit choice.`,
		Example: `  solvequeue dlq redrive order-42 order-43
  solvequeue dlq redrive --all
  solvequeue dlq redrive --all --queue scrapers
  solvequeue dlq redrive --failed order-44          # a failed job, e.g. ERROR_ZERO_BALANCE after a top-up`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if failed {
				return redriveFailed(cmd, env, &redisOpt, queue, args, all)
			}
			return eachDeadLetter(cmd, env, &redisOpt, queue, args, all, nil, "redriven", func(c *admin.Client, d admin.DeadLetter) error {
				return c.Redrive(cmd.Context(), d)
			})
		},
	}
	redisOpt.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "redrive every dead job (command line only: each one is paid for again)")
	_ = cmd.Flags().SetAnnotation("all", noEnvAnnotation, []string{"true"})
	cmd.Flags().BoolVar(&failed, "failed", false, "the IDs are failed jobs, not dead letters: run them again (command line only; each one is paid for again)")
	_ = cmd.Flags().SetAnnotation("failed", noEnvAnnotation, []string{"true"})
	cmd.Flags().StringVar(&queue, "queue", "", "only jobs of this queue, needed when two queues hold a job with the same ID (command line only)")
	_ = cmd.Flags().SetAnnotation("queue", noEnvAnnotation, []string{"true"})
	return cmd
}

// redriveFailed runs the named failed jobs again.
func redriveFailed(cmd *cobra.Command, env *Env, redisOpt *redisOptions, queue string, ids []string, all bool) error {
	if all || len(ids) == 0 {
		return usageError("--failed runs again only the failed jobs you name by ID (never --all)")
	}
	client, closeFn, err := openAdmin(cmd, redisOpt)
	if err != nil {
		return err
	}
	defer closeFn()
	n := 0
	for _, id := range ids {
		q, err := client.RedriveFailed(cmd.Context(), queue, id)
		switch {
		case errors.Is(err, enqueue.ErrJobNotFound):
			fmt.Fprintf(env.Stdout, "%s run again\n", words.Plural(n, "failed job"))
			return usageError("%q is not a job in any queue (see 'solvequeue status %s')", id, id)
		case err != nil:
			fmt.Fprintf(env.Stdout, "%s run again\n", words.Plural(n, "failed job"))
			return err
		}
		fmt.Fprintf(env.Stdout, "%s runs again in queue %s\n", id, q)
		n++
	}
	fmt.Fprintf(env.Stdout, "%s run again\n", words.Plural(n, "failed job"))
	return nil
}

func newDLQPurgeCmd(env *Env) *cobra.Command {
	var (
		redisOpt redisOptions
		all      bool
		yes      bool
		queue    string
	)
	cmd := &cobra.Command{
		Use:   "purge [ID...] [--all [--yes]]",
		Short: "Delete dead jobs for good",
		Long: `Delete dead jobs for good: the ones named by ID, or with --all every one (of --queue
only, when given). --all asks first on a terminal; without one (a script, a pipe) it
deletes only with --yes.`,
		Example: `  solvequeue dlq purge order-42
  solvequeue dlq purge --all
  solvequeue dlq purge --all --queue scrapers --yes   # from a script: no question asked`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var ask func([]admin.DeadLetter) error
			if all && !yes {
				ask = func(letters []admin.DeadLetter) error { return confirmPurge(env, letters) }
			}
			return eachDeadLetter(cmd, env, &redisOpt, queue, args, all, ask, "purged", func(c *admin.Client, d admin.DeadLetter) error {
				n, err := c.Purge(cmd.Context(), []admin.DeadLetter{d})
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
	cmd.Flags().BoolVar(&yes, "yes", false, "with --all, delete without asking: needed where there is no terminal to ask on (command line only)")
	_ = cmd.Flags().SetAnnotation("yes", noEnvAnnotation, []string{"true"})
	cmd.Flags().StringVar(&queue, "queue", "", "only jobs of this queue, needed when two queues hold a job with the same ID (command line only)")
	_ = cmd.Flags().SetAnnotation("queue", noEnvAnnotation, []string{"true"})
	return cmd
}

// eachDeadLetter applies fn to the named dead letters (or all of them with --all), of queue
// only when it is not "". ask, when not nil, sees the letters first and may refuse with an error.
func eachDeadLetter(cmd *cobra.Command, env *Env, redisOpt *redisOptions, queue string, ids []string, all bool,
	ask func([]admin.DeadLetter) error, done string, fn func(*admin.Client, admin.DeadLetter) error) error {
	if all == (len(ids) > 0) {
		return usageError("name the dead jobs by ID, or give --all (not both)")
	}
	client, closeFn, err := openAdmin(cmd, redisOpt)
	if err != nil {
		return err
	}
	defer closeFn()
	letters, err := client.DeadLetters(cmd.Context())
	if err != nil {
		return err
	}
	if queue != "" {
		var mine []admin.DeadLetter
		for _, d := range letters {
			if d.Queue == queue {
				mine = append(mine, d)
			}
		}
		letters = mine
	}
	byID := map[string]admin.DeadLetter{}
	twice := map[string]bool{}
	for _, d := range letters {
		if _, ok := byID[d.ID]; ok {
			twice[d.ID] = true
		}
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
			if twice[id] {
				return usageError("two queues hold a dead job %q: name its queue with --queue", id)
			}
			targets = append(targets, d)
		}
	}
	if ask != nil && len(targets) > 0 {
		if err := ask(targets); err != nil {
			return err
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
			fmt.Fprintf(env.Stdout, "%s %s\n", words.Plural(n, "job"), done)
			return err
		default:
			n++
		}
	}
	fmt.Fprintf(env.Stdout, "%s %s\n", words.Plural(n, "job"), done)
	if gone > 0 {
		fmt.Fprintf(env.Stdout, "%s had left the dead-letter queue meanwhile (redriven or purged elsewhere)\n", words.Plural(gone, "job"))
	}
	return nil
}

// confirmPurge asks on the terminal whether to delete letters, and refuses without a terminal:
// a sweeping delete from a script must say --yes.
func confirmPurge(env *Env, letters []admin.DeadLetter) error {
	queues := map[string]bool{}
	for _, d := range letters {
		queues[d.Queue] = true
	}
	what := fmt.Sprintf("%s in %s %s", words.Plural(len(letters), "dead letter"), map[bool]string{true: "queue", false: "queues"}[len(queues) == 1],
		strings.Join(slices.Sorted(maps.Keys(queues)), ", "))
	if !isTerminal(env.Stdin) {
		return usageError("dlq purge --all would delete %s for good, and there is no terminal to ask on: add --yes to delete them", what)
	}
	fmt.Fprintf(env.Stderr, "delete %s for good? [y/N] ", what)
	answer, err := bufio.NewReader(env.Stdin).ReadString('\n')
	if err != nil && answer == "" {
		return &ExitError{Code: 1, Err: fmt.Errorf("no answer: nothing purged (%w)", err)}
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return &ExitError{Code: 1, Err: errors.New("not confirmed: nothing purged")}
}

// openAdmin returns an operator's client on the Redis the flags name, and the function that closes it.
func openAdmin(cmd *cobra.Command, redisOpt *redisOptions) (*admin.Client, func(), error) {
	rc, err := redisOpt.open(cmd.Context(), 0)
	if err != nil {
		return nil, nil, err
	}
	client, err := admin.NewClient(admin.Config{Redis: rc})
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
