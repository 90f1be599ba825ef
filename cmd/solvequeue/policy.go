package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/internal/policyfile"
)

func newPolicyCmd(env *Env) *cobra.Command {
	var (
		out  outputOptions
		file string
	)
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Print the effective classification table: what each AnySolver error leads to",
		Long: `Print what the worker does with each AnySolver error code: retry (with backoff,
spending the retry budget), throttle (wait, not spending it), failed (permanent,
kept with the job) or dead (the dead-letter queue). Every code of AnySolver's
documentation is listed, then codes a policy file adds, then the codes solvequeue
gives to transport failures (timeouts, HTTP errors, unreadable answers).
--json prints AnySolver's codes only: {"codes":[{"errorId","errorCode","decision","reason"}]}.

A policy file may set AnySolver's codes, the transport codes and solvequeue's own;
any other code is refused with the nearest known one ("did you mean
CAPTCHA_UNSOLVABLE?") unless its rule marks it as a code of your own:
  codes:
    MY_PROVIDER_CODE: {decision: retry, errorId: 2, custom: true}`,
		Example: `  solvequeue policy
  solvequeue policy --json
  solvequeue policy --policy my-policy.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			policy := classify.Default()
			if file != "" {
				p, err := policyfile.Load(file)
				if err != nil {
					return usageError("--policy: %v", err)
				}
				policy = p.Classification()
			}
			rules := policy.Rules()
			if out.JSON {
				// The contract's shape: AnySolver's codes (every seed code, then any a policy
				// adds). The codes given to transport failures are in the table view only.
				var codes []classify.Rule
				for _, r := range rules {
					if !classify.IsTransportCode(r.ErrorCode) {
						codes = append(codes, r)
					}
				}
				return json.NewEncoder(env.Stdout).Encode(struct {
					Codes []classify.Rule `json:"codes"`
				}{codes})
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ERRORID\tERRORCODE\tDECISION\tREASON")
			for _, r := range rules {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.ErrorID, r.ErrorCode, r.Decision, r.Reason)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "\nretry budget %d; unknown codes follow their errorId: 2 → retry, anything else → dead\n", policy.MaxRetries())
			return nil
		},
	}
	out.register(cmd)
	cmd.Flags().StringVar(&file, "policy", "", "policy file (YAML or JSON) to apply over the defaults")
	return cmd
}
