package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

func newFakeCmd(env *Env) *cobra.Command {
	var (
		addr      string
		keys      string
		balance   float64
		solveTime time.Duration
	)
	cmd := &cobra.Command{
		Use:   "fake-anysolver",
		Short: "Run the fake AnySolver server alone, for staging and trials",
		Long: `Run the fake AnySolver: createTask, getTaskResult and getBalance as the real API
speaks them, with no captcha solved and no money spent.

A job scripts it through its websiteKey: "sq:create=SERVICE_UNAVAILABLE*2;solve=6s"
answers the first two createTask calls with SERVICE_UNAVAILABLE, then solves in 6 s.
Directives: create=CODE*N, poll=CODE*N, failed=CODE*N, http=FAULT*N, solve=DURATION
(faults: html502, http503, http429, garbage, truncated, wrongshape, huge, endless,
hang, reset). Any other websiteKey is solved after --solve-time.`,
		Example: `  solvequeue fake-anysolver --addr 127.0.0.1:8089
  ANYSOLVER_URL=http://127.0.0.1:8089 ANYSOLVER_API_KEY=test solvequeue worker`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var accepted []string
			if keys != "" {
				accepted = strings.Split(keys, ",")
			}
			fallback := func(t anysolvertest.Task) anysolvertest.Behavior {
				b := anysolvertest.DefaultBehavior(t)
				if solveTime > 0 && !b.Immediate {
					b.SolveTime = solveTime
				}
				return b
			}
			fake := anysolvertest.New(anysolvertest.Options{APIKeys: accepted, Balance: balance,
				Script: anysolvertest.DirectiveScript(fallback)})
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return usageError("--addr %s: %v", addr, err)
			}
			fmt.Fprintf(env.Stdout, "fake AnySolver listening on http://%s (balance %.2f)\n", ln.Addr(), balance)
			srv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-cmd.Context().Done()
				_ = srv.Close()
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8089", "listen address")
	f.StringVar(&keys, "api-keys", "", "comma-separated client keys to accept (default: any non-empty key)")
	f.Float64Var(&balance, "balance", 100, "starting account balance")
	f.DurationVar(&solveTime, "solve-time", 2*time.Second, "how long a token task takes to solve")
	return cmd
}
