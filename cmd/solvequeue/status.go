package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/worker"
)

func newStatusCmd(env *Env) *cobra.Command {
	var (
		redisOpt redisOptions
		out      outputOptions
		queue    string
	)
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Show a job's state and outcome, and the account breaker's state",
		Example: `  solvequeue status order-42
  solvequeue status order-42 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rc, err := redisOpt.open(ctx, 0)
			if err != nil {
				return err
			}
			defer rc.Close()
			client, err := enqueue.NewClient(enqueue.Config{Redis: rc})
			if err != nil {
				return err
			}
			o, err := client.StatusIn(ctx, queue, args[0])
			if err != nil {
				return err
			}
			acct, _ := breaker.Read(ctx, rc)
			if o.Queue != "" {
				if info, err := asynq.NewInspectorFromRedisClient(rc).GetQueueInfo(o.Queue); err == nil {
					o.QueuePaused = info.Paused
				}
			}
			if out.JSON {
				return json.NewEncoder(env.Stdout).Encode(struct {
					enqueue.Outcome
					Breaker *worker.BreakerState `json:"breaker,omitempty"`
				}{o, openOrNil(acct)})
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "id\t%s\nqueue\t%s\nstate\t%s\n", o.ID, o.Queue, o.State)
			fmt.Fprintf(tw, "attempts\t%d (createTask calls: %d, polls: %d, retries: %d, throttles: %d)\n", o.Attempts, o.CreateTasks, o.Polls, o.Retries, o.Throttles)
			if o.Provider != "" {
				fmt.Fprintf(tw, "provider\t%s (tried: %s)\n", o.Provider, strings.Join(o.ProvidersTried, " → "))
			}
			if o.Error != nil {
				fmt.Fprintf(tw, "error\t%s (errorId %d) on %s: %s\n", o.Error.ErrorCode, o.Error.ErrorID, o.Error.Call, o.Error.ErrorDescription)
			}
			if len(o.Solution) > 0 {
				fmt.Fprintf(tw, "solution\t%s\n", o.Solution)
			}
			if !o.ExpiresAt.IsZero() {
				fmt.Fprintf(tw, "token expires\t%s\n", expiryText(o, time.Now()))
			}
			if !o.NextRunAt.IsZero() {
				fmt.Fprintf(tw, "next run\t%s\n", o.NextRunAt.Format(time.RFC3339))
			}
			if o.QueuePaused {
				fmt.Fprintf(tw, "queue paused\tyes\n")
			}
			if acct.Open {
				fmt.Fprintf(tw, "breaker\topen since %s: %s (paused queues: %v)\n", acct.Since.Format(time.RFC3339), acct.Code, acct.PausedQueues)
			}
			return tw.Flush()
		},
	}
	redisOpt.register(cmd)
	out.register(cmd)
	cmd.Flags().StringVar(&queue, "queue", "", "the job's queue (default: search every queue)")
	return cmd
}

func openOrNil(b worker.BreakerState) *worker.BreakerState {
	if !b.Open {
		return nil
	}
	return &b
}

// expiryText says when a solved token stops being accepted by the site, and how long that is
// from now: "2026-12-01T10:02:00Z (in 1m30s)" or "2026-12-01T10:02:00Z (expired 5s ago)".
func expiryText(o enqueue.Outcome, now time.Time) string {
	at := o.ExpiresAt.UTC().Format(time.RFC3339)
	if o.Expired(now) {
		return fmt.Sprintf("%s (expired %s ago)", at, now.Sub(o.ExpiresAt).Round(time.Second))
	}
	return fmt.Sprintf("%s (in %s)", at, o.ExpiresAt.Sub(now).Round(time.Second))
}
