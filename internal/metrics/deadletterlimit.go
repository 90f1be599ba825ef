package metrics

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/keys"
)

var (
	deadLettersLimitDesc = prometheus.NewDesc("solvequeue_dead_letters_limit",
		"The bound on the durable dead-letter queue's entries (--dlq-limit); absent when unbounded.", nil, nil)
	deadLettersRefusedDesc = prometheus.NewDesc("solvequeue_dead_letters_refused_total",
		"Dead jobs refused by the full dead-letter queue (kept in asynq's archive only), counted by every worker in Redis.", nil, nil)
)

type deadLetterLimitCollector struct {
	rc    redis.UniversalClient
	limit int
}

// NewDeadLetterLimitCollector returns a collector of the dead-letter queue's bound:
// solvequeue_dead_letters_limit (limit, the worker's Config.DeadLetterLimit; not emitted when
// negative, which means no bound) and solvequeue_dead_letters_refused_total (read from Redis at
// scrape time, within DeadLetterScrapeTimeout: the dead letters any worker refused at the limit;
// nothing is emitted when the read fails). With solvequeue_dead_letters, an alert can fire as the
// queue nears its bound, before anything is refused. A limit of 0 means
// deadletter.LimitDefault.
func NewDeadLetterLimitCollector(rc redis.UniversalClient, limit int) prometheus.Collector {
	if limit == 0 {
		limit = deadletter.LimitDefault
	}
	return &deadLetterLimitCollector{rc: rc, limit: limit}
}

// Describe sends the two descriptors.
func (c *deadLetterLimitCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- deadLettersLimitDesc
	ch <- deadLettersRefusedDesc
}

// Collect sends the limit and reads the refused count from Redis.
func (c *deadLetterLimitCollector) Collect(ch chan<- prometheus.Metric) {
	if c.limit > 0 {
		ch <- prometheus.MustNewConstMetric(deadLettersLimitDesc, prometheus.GaugeValue, float64(c.limit))
	}
	ctx, cancel := context.WithTimeout(context.Background(), DeadLetterScrapeTimeout)
	defer cancel()
	n, err := c.rc.Get(ctx, keys.DeadLettersRefused).Int64()
	if errors.Is(err, redis.Nil) {
		n, err = 0, nil
	}
	if err == nil {
		ch <- prometheus.MustNewConstMetric(deadLettersRefusedDesc, prometheus.CounterValue, float64(n))
	}
}
