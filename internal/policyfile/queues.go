package policyfile

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/solvequeue/solvequeue/internal/queuereg"
	"github.com/solvequeue/solvequeue/internal/yamlfile"
)

// Bounds of a queue's budget in a policy file.
const (
	// BudgetWindowMin is the shortest rolling window a budget may have.
	BudgetWindowMin = 10 * time.Second
	// BudgetWindowMax is the longest rolling window a budget may have.
	BudgetWindowMax = 31 * 24 * time.Hour
	maxBudgetCost   = 1e9
	maxBudgetCount  = 1_000_000_000
	maxProviders    = 16
)

// Budget caps what a queue may spend on AnySolver in a rolling window: money (MaxCost, in the
// account's currency, as AnySolver reports cost), createTask calls (MaxCreateTasks), or both. A
// zero limit is no limit; a budget has at least one.
type Budget struct {
	// Window is the rolling window, 10 s to 31 days.
	Window time.Duration `json:"window"`
	// MaxCost is the most money spent in any window; 0 for no money limit.
	MaxCost float64 `json:"maxCost,omitempty"`
	// MaxCreateTasks is the most createTask calls in any window; 0 for no count limit.
	MaxCreateTasks int `json:"maxCreateTasks,omitempty"`
	// EstimatedCost is what a createTask is reserved at until the task type's real cost has been
	// seen. 0 reserves nothing until then. It is at most MaxCost when MaxCost is set.
	EstimatedCost float64 `json:"estimatedCost,omitempty"`
}

// QueuePolicy is what a policy file says of one queue: its budget (nil for none) and its default
// list of providers to fail over between (empty: AnySolver chooses).
type QueuePolicy struct {
	// Budget caps the queue's spend; nil for no cap.
	Budget *Budget `json:"budget,omitempty"`
	// Providers is the queue's default failover list, for jobs that name no provider.
	Providers []string `json:"providers,omitempty"`
}

// queues reads the queues section: a mapping of queue name to {budget, providers}.
func (ps *parser) readQueues(n *yaml.Node) error {
	ps.queues = map[string]QueuePolicy{}
	return ps.each(n, "queues", func(k, v *yaml.Node) error {
		name := k.Value
		if !queuereg.ValidName(name) {
			return ps.fail(k, "queues: queue name %q must be 1-64 letters, digits, '_', '.', ':' or '-'", name)
		}
		var q QueuePolicy
		err := ps.each(v, "queues."+name, func(k2, f *yaml.Node) error {
			switch k2.Value {
			case "budget":
				b, err := ps.budget(name, k2, f)
				q.Budget = b
				return err
			case "providers":
				list, err := ps.providers(name, f)
				q.Providers = list
				return err
			}
			return ps.fail(k2, "queues.%s: unknown key %q (want budget or providers)", name, k2.Value)
		})
		if err != nil {
			return err
		}
		ps.queues[name] = q
		return nil
	})
}

func (ps *parser) budget(queue string, at, n *yaml.Node) (*Budget, error) {
	field := "queues." + queue + ".budget"
	var b Budget
	windowSeen := false
	err := ps.each(n, field, func(k, v *yaml.Node) error {
		var err error
		switch k.Value {
		case "window":
			windowSeen = true
			b.Window, err = ps.duration(v, field+".window", BudgetWindowMin, BudgetWindowMax)
		case "maxCost":
			b.MaxCost, err = ps.money(v, field+".maxCost", false)
		case "estimatedCost":
			b.EstimatedCost, err = ps.money(v, field+".estimatedCost", true)
		case "maxCreateTasks":
			b.MaxCreateTasks, err = ps.count(v, field+".maxCreateTasks", 1, maxBudgetCount)
		default:
			err = ps.fail(k, "%s: unknown key %q (want window, maxCost, maxCreateTasks or estimatedCost)", field, k.Value)
		}
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case !windowSeen:
		return nil, ps.fail(at, "%s: missing window (a duration from %v to %v, such as \"24h\")", field, BudgetWindowMin, BudgetWindowMax)
	case b.MaxCost == 0 && b.MaxCreateTasks == 0:
		return nil, ps.fail(at, "%s: set maxCost, maxCreateTasks or both", field)
	case b.MaxCost > 0 && b.EstimatedCost > b.MaxCost:
		// A createTask reserved at more than the whole cap would never fit: every reservation
		// would be refused and the queue held for good.
		return nil, ps.fail(at, "%s: estimatedCost %g is more than maxCost %g, so no createTask would ever fit; set estimatedCost to at most %g",
			field, b.EstimatedCost, b.MaxCost, b.MaxCost)
	}
	return &b, nil
}

// money reads a non-negative amount (positive unless zeroOK).
func (ps *parser) money(n *yaml.Node, field string, zeroOK bool) (float64, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!float" && n.Tag != "!!int") {
		return 0, ps.fail(n, "%s: want an amount such as 20.00, got %s", field, yamlfile.Describe(n))
	}
	v, err := strconv.ParseFloat(n.Value, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || (v == 0 && !zeroOK) || v > maxBudgetCost {
		low := "above 0"
		if zeroOK {
			low = "0 or more"
		}
		return 0, ps.fail(n, "%s must be %s and at most %g, got %s", field, low, float64(maxBudgetCost), n.Value)
	}
	return v, nil
}

func (ps *parser) providers(queue string, n *yaml.Node) ([]string, error) {
	field := "queues." + queue + ".providers"
	n = yamlfile.Deref(n)
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return nil, ps.fail(n, "%s: want a list of provider names such as [CapSolver, CapMonster], got %s", field, yamlfile.Describe(n))
	}
	if len(n.Content) > maxProviders {
		return nil, ps.fail(n, "%s: at most %d providers, got %d", field, maxProviders, len(n.Content))
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		item = yamlfile.Deref(item)
		name := strings.TrimSpace(item.Value)
		if item.Kind != yaml.ScalarNode || name == "" || len(name) > 64 || strings.ContainsAny(name, " \t\r\n") {
			return nil, ps.fail(item, "%s: want a provider name such as CapSolver, got %s", field, yamlfile.Describe(item))
		}
		if seen[strings.ToLower(name)] {
			return nil, ps.fail(item, "%s: provider %q is listed twice", field, name)
		}
		seen[strings.ToLower(name)] = true
		out = append(out, name)
	}
	return out, nil
}

// String shows a budget as a policy file would write it.
func (b Budget) String() string {
	var parts []string
	parts = append(parts, "window: "+b.Window.String())
	if b.MaxCost > 0 {
		parts = append(parts, fmt.Sprintf("maxCost: %g", b.MaxCost))
	}
	if b.MaxCreateTasks > 0 {
		parts = append(parts, fmt.Sprintf("maxCreateTasks: %d", b.MaxCreateTasks))
	}
	if b.EstimatedCost > 0 {
		parts = append(parts, fmt.Sprintf("estimatedCost: %g", b.EstimatedCost))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// NamesProvider reports whether the operator's policy names provider in some queue's providers
// list, spelled exactly so. Only such a provider's errors count toward the provider breaker that
// every queue shares: a provider a job names itself is the job's producer's word, not the
// operator's.
func (p *Policy) NamesProvider(provider string) bool {
	if p == nil {
		return false
	}
	for _, q := range p.queues {
		if slices.Contains(q.Providers, provider) {
			return true
		}
	}
	return false
}

// ProviderNames returns every provider the policy names, sorted, each once.
func (p *Policy) ProviderNames() []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, q := range p.queues {
		out = append(out, q.Providers...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
