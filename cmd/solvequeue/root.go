package main

import (
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

// noEnvAnnotation marks a flag that only the command line sets: a sweeping, destructive choice
// (dlq purge --all) must not come from a variable left over in the environment.
const noEnvAnnotation = "solvequeue/no-env"

// readsEnv reports whether a flag takes its value from its environment variable.
func readsEnv(f *pflag.Flag) bool {
	_, flagOnly := f.Annotations[noEnvAnnotation]
	return f.Name != "help" && !flagOnly
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
		Example: `  solvequeue demo
  REDIS_URL=redis://127.0.0.1:6379 ANYSOLVER_API_KEY=... solvequeue worker --http 127.0.0.1:8080
  solvequeue enqueue --type RecaptchaV2TaskProxyless --website-url https://example.com --website-key 6Le-abc --wait
  solvequeue batch jobs.jsonl --out outcomes.jsonl
  solvequeue gateway --keys keys.yaml          # AnySolver's API for Python and Node scrapers`,
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
		newBudgetCmd(env),
		newDemoCmd(env),
		newFakeCmd(env),
		newGatewayCmd(env),
		newKeysCmd(env),
		newBenchCmd(env),
		newSoakCmd(env),
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
	if !readsEnv(f) || strings.Contains(f.Usage, "[$") {
		return
	}
	f.Usage += " [$" + envName(f.Name) + "]"
}

// applyEnv sets every flag the user did not give from its environment variable.
func applyEnv(cmd *cobra.Command, env *Env) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || !readsEnv(f) {
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
