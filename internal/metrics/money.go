package metrics

import (
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/solvequeue/solvequeue/internal/ledger"
)

// moneyMetrics are the spend caps' and the providers' metrics: money settled per queue, what each
// window has left, and each provider's results and solve times.
type moneyMetrics struct {
	spend           *prometheus.CounterVec
	remaining       *prometheus.GaugeVec
	providerResults *prometheus.CounterVec
	providerSolve   *prometheus.HistogramVec
	providers       *labelSet
}

func newMoneyMetrics(reg prometheus.Registerer) moneyMetrics {
	m := moneyMetrics{
		spend: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "solvequeue_spend_cost_total",
			Help: "Money settled against queues' budgets: the cost AnySolver reported per createTask, by queue.",
		}, []string{"queue"}),
		remaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "solvequeue_budget_remaining",
			Help: "What a queue's budget still allows in its rolling window, by unit: cost (money) or create_tasks; the ratio unit is remaining over the cap (0 to 1, the smaller of the two).",
		}, []string{"queue", "unit"}),
		providerResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "solvequeue_provider_results_total",
			Help: "createTask calls that named a provider, by provider and outcome: ok when solved, else the error code.",
		}, []string{"provider", "outcome"}),
		providerSolve: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "solvequeue_provider_solve_seconds",
			Help:    "Seconds from a remote task's creation to its solution, by the provider that solved it.",
			Buckets: jobSecondsBuckets,
		}, []string{"provider"}),
		providers: newLabelSet(maxProviderLabels),
	}
	reg.MustRegister(m.spend, m.remaining, m.providerResults, m.providerSolve)
	return m
}

// maxProviderLabels bounds the provider label values that jobs bring: a job names its providers,
// so their names are the producer's to choose; past this many, new ones are counted as "other".
// The providers the operator names (NameProviders) are not counted toward the bound.
const maxProviderLabels = 32

// NameProviders gives each of names its own provider label for good, whatever the bound and
// whatever names jobs brought before: the providers of the operator's policy file, so that no
// tenant inventing provider names can make a real provider count as "other". package worker
// calls it with its policy's providers.
func (m *Metrics) NameProviders(names []string) {
	m.money.providers.name(names)
}

// ProviderResult counts a provider's createTask outcome and observes its solve time.
func (m *Metrics) ProviderResult(provider, code string, solveTime time.Duration) {
	p := m.money.providers.label(provider)
	if code == "" {
		m.money.providerResults.WithLabelValues(p, "ok").Inc()
		if solveTime > 0 {
			m.money.providerSolve.WithLabelValues(p).Observe(solveTime.Seconds())
		}
		return
	}
	m.money.providerResults.WithLabelValues(p, m.codeLabel(code)).Inc()
}

// labelSet admits label values up to a bound, then names the rest "other"; named values are
// admitted whatever the bound.
type labelSet struct {
	mu    sync.Mutex
	max   int
	known map[string]bool // admitted under the bound
	named map[string]bool // admitted for good
}

func newLabelSet(n int) *labelSet {
	return &labelSet{max: n, known: map[string]bool{}, named: map[string]bool{}}
}

// name admits vs for good.
func (s *labelSet) name(vs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range vs {
		if labelValueOK(v) {
			s.named[v] = true
		}
	}
}

func (s *labelSet) label(v string) string {
	if !labelValueOK(v) {
		return LabelOther
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.named[v] || s.known[v] {
		return v
	}
	if len(s.known) >= s.max {
		return LabelOther
	}
	s.known[v] = true
	return v
}

// labelValueOK reports whether v may be a label value: Prometheus refuses (and WithLabelValues
// panics on) a value that is not UTF-8.
func labelValueOK(v string) bool {
	return v != "" && len(v) <= maxLabelLen && utf8.ValidString(v)
}

// Spent counts money settled against a queue's budget.
func (m *Metrics) Spent(queue string, cost float64) {
	if cost > 0 {
		m.money.spend.WithLabelValues(queue).Add(cost)
	}
}

// BudgetRead sets what a queue's window has left.
func (m *Metrics) BudgetRead(u ledger.Usage) {
	ratio := 1.0
	if u.Budget.MaxCost > 0 {
		m.money.remaining.WithLabelValues(u.Queue, "cost").Set(u.RemainingCost)
		ratio = min(ratio, u.RemainingCost/u.Budget.MaxCost)
	}
	if u.Budget.MaxCreateTasks > 0 {
		m.money.remaining.WithLabelValues(u.Queue, "create_tasks").Set(float64(u.RemainingCreateTasks))
		ratio = min(ratio, float64(u.RemainingCreateTasks)/float64(u.Budget.MaxCreateTasks))
	}
	m.money.remaining.WithLabelValues(u.Queue, "ratio").Set(ratio)
}
