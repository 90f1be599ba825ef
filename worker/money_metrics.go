package worker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/solvequeue/solvequeue/enqueue/budget"
)

// moneyMetrics are the spend caps' metrics: money settled per queue and what each window has left.
type moneyMetrics struct {
	spend     *prometheus.CounterVec
	remaining *prometheus.GaugeVec
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
	}
	reg.MustRegister(m.spend, m.remaining)
	return m
}

// Spent counts money settled against a queue's budget.
func (m *Metrics) Spent(queue string, cost float64) {
	if cost > 0 {
		m.money.spend.WithLabelValues(queue).Add(cost)
	}
}

// BudgetRead sets what a queue's window has left.
func (m *Metrics) BudgetRead(u budget.Usage) {
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
