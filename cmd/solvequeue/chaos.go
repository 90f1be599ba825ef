package main

import (
	"encoding/json"
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/chaos"
)

// chaosHelp is the part of `solvequeue soak --help` about --chaos.
const chaosHelp = `The chaos run (--chaos) needs redis-server on PATH. It starts its own redis-server with
appendonly yes (fsync always), the fake AnySolver, a callback receiver on 127.0.0.1, and
--workers subprocesses of this binary ('solvequeue worker --callback-allow-private' with
a policy that gives the queue "capped" a budget). It submits --jobs jobs: slow solves
(2-8 s), transient errors (SERVICE_UNAVAILABLE twice), throttles (RATE_LIMITED), unsolvable
tasks (paid, failed, re-created), permanent failures (DOMAIN_BANNED), dead letters
(UNKNOWN_PROVIDER_ERROR), jobs whose task fails after 10 s, past their 6 s deadline (dead,
then solved once redriven with a fresh lifetime), jobs without a retry budget whose 12 s
solve spans the graceful restarts (submitted after the first kill), one in six on the
budgeted queue and one in three with a callbackUrl. Meanwhile it:

  - SIGKILLs a worker --kills times, every --kill-every, and restarts it;
  - kills redis-server with SIGKILL and restarts it from its AOF on the same port;
  - raises the budget (3 → 8 createTask calls a minute) and lowers it (→ 2), rewriting
    the policy and restarting workers with SIGTERM;
  - redrives the dead letters three times, the first two while the receiver still refuses
    callbacks (503), so that callbacks are being retried.

Then it waits (--settle at most; asynq gives a killed worker's jobs back 70-170 s after the
kill) and checks, against the fake AnySolver's own answers and Redis:

  - every job ended, in one final state consistent with what the fake answered it
    (a solved job's token is one the fake gave it; a failed or dead job's code is one the
    fake answered it, or one of solvequeue's own; a redriven job never ends JOB_EXPIRED;
    a job without a retry budget ends solved unless a worker was SIGKILLed in its life);
  - a dead-letter entry exactly when a job is dead;
  - paid createTask calls never above what is allowed: one per paid task, a second one
    only across a redrive, after the first task expired, or within 5 s before a worker's
    SIGKILL (the window the README's Reliability section names), once per kill;
  - the budget never passed: in every minute, no more paid createTask calls on "capped"
    than the highest cap of a worker alive then;
  - every outcome of a callback job called back, the last delivery telling the final
    outcome (by the body's outcomeSeq when it has one).

Each violation is printed with its job ID; the command exits 1 if there is any.`

// runChaos runs `solvequeue soak --chaos` and prints its report.
func runChaos(cmd *cobra.Command, env *Env, o *soakOptions) error {
	opts := o.chaosOpt
	opts.Progress = env.Stdout
	if o.output.JSON {
		opts.Progress = env.Stderr
	}
	report, err := chaos.Run(cmd.Context(), opts)
	if report == nil {
		return err
	}
	return printRunReport(env, o.output.JSON, report, func(w io.Writer) error { return chaos.WriteSummary(w, report) },
		err, chaos.ErrViolations)
}

// printRunReport prints a finished run's report of soak or chaos (JSON, or its summary for
// people) and returns the run's error, with exit status 1 when it is failed (the run found what
// it looks for: memory that grew, a violation).
func printRunReport(env *Env, asJSON bool, report any, summary func(io.Writer) error, runErr, failed error) error {
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else if err := summary(env.Stdout); err != nil {
		return err
	}
	if errors.Is(runErr, failed) {
		return &ExitError{Code: 1, Err: runErr}
	}
	return runErr
}
