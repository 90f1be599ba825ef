package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// envNames maps flags to the environment variables every deployment already has; any other
// flag reads SOLVEQUEUE_ + its name in upper case with '-' as '_'.
var envNames = map[string]string{
	"redis":         "REDIS_URL",
	"anysolver-url": "ANYSOLVER_URL",
	"api-key":       "ANYSOLVER_API_KEY",
}

// envName is the environment variable of a flag.
func envName(flag string) string {
	if n, ok := envNames[flag]; ok {
		return n
	}
	return "SOLVEQUEUE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func newRootCmd(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "solvequeue",
		Short: "Solve captchas through AnySolver from a Redis-backed job queue",
		Long: `solvequeue solves captchas through the AnySolver API for scrapers and batch jobs.
Producers enqueue solve jobs into Redis (asynq); workers call AnySolver; every
failure is classified as retry, throttle, failed or dead (the dead-letter queue).

Every flag can also be set by an environment variable, shown in [brackets]:
flag > environment > default.

Try it with nothing installed:   solvequeue demo`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd, env)
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		newWorkerCmd(env),
		newEnqueueCmd(env),
		newBatchCmd(env),
		newStatusCmd(env),
		newDLQCmd(env),
		newPolicyCmd(env),
		newDemoCmd(env),
		newFakeCmd(env),
	)
	// Show each flag's environment variable in --help.
	root.PersistentFlags().VisitAll(annotateEnv)
	for _, c := range root.Commands() {
		c.Flags().VisitAll(annotateEnv)
		for _, sub := range c.Commands() {
			sub.Flags().VisitAll(annotateEnv)
		}
	}
	return root
}

func annotateEnv(f *pflag.Flag) {
	if f.Name == "help" || strings.Contains(f.Usage, "[$") {
		return
	}
	f.Usage += " [$" + envName(f.Name) + "]"
}

// applyEnv sets every flag the user did not give from its environment variable.
func applyEnv(cmd *cobra.Command, env *Env) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "help" {
			return
		}
		v := env.Getenv(envName(f.Name))
		if v == "" {
			return
		}
		if setErr := f.Value.Set(v); setErr != nil {
			err = usageError("$%s=%q is not a valid --%s: %v", envName(f.Name), v, f.Name, setErr)
		}
	})
	return err
}

// mustHave returns an error naming the flag and its variable when v is empty.
func mustHave(v, flag string) error {
	if v == "" {
		return usageError("--%s is required (or set %s)", flag, envName(flag))
	}
	return nil
}

func fprintf(cmd *cobra.Command, format string, args ...any) {
	fmt.Fprintf(cmd.OutOrStdout(), format, args...)
}
