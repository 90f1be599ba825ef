package worker

import "github.com/solvequeue/solvequeue/internal/policyfile"

// Policy is a read policy file: how AnySolver's errors are classified (Classification) and
// what each queue may spend and which providers it fails over between (Queue). It is immutable
// and safe for concurrent use; Config.Policy, the gateway and the console take the same value.
type Policy = policyfile.Policy

// LoadPolicy reads a policy file (YAML or JSON): retry and throttle settings, code decisions
// over classify's defaults, and queue budgets and provider lists. An error names the file and
// line at fault; a code outside AnySolver's, the transport codes and classify.OwnCodes is
// refused with the nearest known one unless its rule says custom: true.
func LoadPolicy(path string) (*Policy, error) { return policyfile.Load(path) }
