package main

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/solvequeue/solvequeue/enqueue/gateway"
	"github.com/solvequeue/solvequeue/internal/callback"
)

func newKeysCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "What an operator hands the tenant of a gateway key",
		Long: `What an operator hands the tenant of a gateway key, besides the key itself.

The workers sign the callbacks of a gateway key's jobs with a secret of that key's own,
so that no tenant can check, or forge, another's deliveries: the keys file's
callbackSecret for the key, or else one derived from the workers' --callback-secret
and the key's name, which 'keys callback-secret NAME' prints.`,
		Example: `  SOLVEQUEUE_CALLBACK_SECRET=... solvequeue keys callback-secret alpha
  solvequeue keys callback-secret alpha --keys keys.yaml`,
	}
	cmd.AddCommand(newKeysCallbackSecretCmd(env))
	return cmd
}

// keysCallbackSecretOptions are the flags of 'keys callback-secret'.
type keysCallbackSecretOptions struct {
	CallbackSecret string
	Keys           string
}

func newKeysCallbackSecretCmd(env *Env) *cobra.Command {
	o := &keysCallbackSecretOptions{}
	cmd := &cobra.Command{
		Use:   "callback-secret NAME",
		Short: "Print the secret the callbacks of key NAME's jobs are signed with",
		Long: `Print the secret the workers sign the callbacks of gateway key NAME's jobs with, for
its tenant to check their X-Solvequeue-Signature (see the README's callbacks).

It is the key's callbackSecret when --keys gives it one, else the hex HMAC-SHA256 under
--callback-secret (the workers' own, from the same variable) of "solvequeue key callback "
and NAME: a secret of the key's own, which says nothing of --callback-secret nor of
another key's. Give the same --callback-secret and --keys as the workers.`,
		Example: `  SOLVEQUEUE_CALLBACK_SECRET=... solvequeue keys callback-secret alpha
  solvequeue keys callback-secret alpha --keys keys.yaml   # its callbackSecret, if the file gives one`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			secret, err := o.secret(args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(env.Stdout, secret)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.CallbackSecret, "callback-secret", "", "the workers' --callback-secret, which a key's secret is derived from (prefer the environment variable: flags show in ps)")
	f.StringVar(&o.Keys, "keys", "", "the workers' keys file: a key's callbackSecret there is its secret, and NAME must be one of its keys")
	return cmd
}

// secret returns the secret the workers sign the callbacks of key name's jobs with.
func (o *keysCallbackSecretOptions) secret(name string) (string, error) {
	if o.Keys != "" {
		keys, err := gateway.LoadKeys(o.Keys)
		if err != nil {
			return "", usageError("--keys: %v", err)
		}
		own := keys.CallbackSecrets()
		if s, ok := own[name]; ok {
			return s, nil
		}
		if !slices.Contains(keys.Names(), name) {
			return "", usageError("%s has no key named %q (it has %v)", o.Keys, name, keys.Names())
		}
	}
	if err := mustHave(o.CallbackSecret, "callback-secret"); err != nil {
		return "", err
	}
	return callback.KeySecret(o.CallbackSecret, name), nil
}
