package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/solvequeue/solvequeue/internal/ledger"
	"github.com/solvequeue/solvequeue/internal/policyfile"
)

func newBudgetCmd(env *Env) *cobra.Command {
	var (
		redisOpt   redisOptions
		out        outputOptions
		policyFile string
	)
	cmd := &cobra.Command{
		Use:   "budget",
		Short: "Show each queue's spend cap: spent, remaining and when its window frees room",
		Long: `Shows every queue that has a budget in the policy file: what was spent in its rolling
window (createTask calls and money), what is left, when the oldest spend leaves the window, and
whether the budget holds the queue paused. Workers share these figures through Redis.`,
		Example: `  solvequeue budget --policy policy.yaml
  solvequeue budget --policy policy.yaml --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if policyFile == "" {
				return usageError("--policy is required: budgets are set in the policy file's queues section")
			}
			policy, err := policyfile.Load(policyFile)
			if err != nil {
				return usageError("--policy: %v", err)
			}
			ctx := cmd.Context()
			rc, err := redisOpt.open(ctx, 0)
			if err != nil {
				return err
			}
			defer rc.Close()
			lg := ledger.New(rc)
			var usages []ledger.Usage
			queues := policy.Queues()
			names := make([]string, 0, len(queues))
			for q, qp := range queues {
				if qp.Budget != nil {
					names = append(names, q)
				}
			}
			slices.Sort(names)
			for _, q := range names {
				u, err := lg.Read(ctx, q, *queues[q].Budget)
				if err != nil {
					return err
				}
				usages = append(usages, u)
			}
			if out.JSON {
				return json.NewEncoder(env.Stdout).Encode(struct {
					Queues []ledger.Usage `json:"queues"`
				}{usages})
			}
			if len(usages) == 0 {
				fmt.Fprintf(env.Stdout, "no queue has a budget in %s (add queues: {NAME: {budget: {window: 24h, maxCost: 20}}})\n", policyFile)
				return nil
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "QUEUE\tWINDOW\tCREATETASKS\tCOST\tREMAINING\tROOM AT\tPAUSED")
			for _, u := range usages {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%v\n", u.Queue, u.Budget.Window,
					ofLimit(strconv.FormatInt(u.CreateTasks, 10), u.Budget.MaxCreateTasks > 0, strconv.Itoa(u.Budget.MaxCreateTasks)),
					ofLimit(strconv.FormatFloat(u.Cost, 'f', 4, 64), u.Budget.MaxCost > 0, strconv.FormatFloat(u.Budget.MaxCost, 'f', 2, 64)),
					remaining(u), roomAt(u), u.Paused)
			}
			return tw.Flush()
		},
	}
	redisOpt.register(cmd)
	out.register(cmd)
	cmd.Flags().StringVar(&policyFile, "policy", "", "the policy file whose queues section sets the budgets (required)")
	return cmd
}

func ofLimit(v string, limited bool, limit string) string {
	if !limited {
		return v
	}
	return v + " of " + limit
}

func remaining(u ledger.Usage) string {
	var s string
	if u.RemainingCreateTasks >= 0 {
		s = strconv.FormatInt(u.RemainingCreateTasks, 10) + " createTasks"
	}
	if u.RemainingCost >= 0 {
		if s != "" {
			s += ", "
		}
		s += strconv.FormatFloat(u.RemainingCost, 'f', 4, 64)
	}
	return s
}

func roomAt(u ledger.Usage) string {
	if u.NextRoom.IsZero() {
		return "-"
	}
	return u.NextRoom.Format(time.RFC3339)
}
