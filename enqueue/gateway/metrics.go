package gateway

import (
	"regexp"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts the gateway's requests by method, key name and answer, times them, and counts
// the report methods by task type. Labels carry key names, never keys. A nil *Metrics counts
// nothing.
type Metrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	reports  *prometheus.CounterVec
	expired  *prometheus.CounterVec
}

// NewMetrics registers the gateway's metrics with reg:
//
//	solvequeue_gateway_requests_total{method,key,code}   answers; code "ok" or the errorCode
//	solvequeue_gateway_request_seconds{method}           time from request to answer
//	solvequeue_gateway_reports_total{method,key,task_type}  reportIncorrect*/reportCorrect* calls,
//	                                                        and 2captcha's reportgood/reportbad
//	solvequeue_gateway_tokens_expired_total{method,key}  solved tokens first read after they expired
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "solvequeue_gateway_requests_total",
			Help: "Gateway answers by method, key name and code (ok, or the errorCode answered).",
		}, []string{"method", "key", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "solvequeue_gateway_request_seconds",
			Help:    "Gateway request latency by method, from the request to the answer.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "solvequeue_gateway_reports_total",
			Help: "reportIncorrectRecaptcha, reportCorrectRecaptcha, reportIncorrectImageCaptcha and 2captcha's reportgood and reportbad calls by key name and task type.",
		}, []string{"method", "key", "task_type"}),
		expired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "solvequeue_gateway_tokens_expired_total",
			Help: "Solved tokens whose first read by a client (getTaskResult or res.php) came after the token expired, by method and key name.",
		}, []string{"method", "key"}),
	}
	reg.MustRegister(m.requests, m.seconds, m.reports, m.expired)
	return m
}

// noKey is the key label of a request that named no valid key.
const noKey = "none"

// methodLabel bounds the method label to the methods served.
func methodLabel(method string) string {
	if slices.Contains(Methods, method) || method == PathIn || method == PathRes {
		return method
	}
	return "other"
}

func (m *Metrics) answered(method, key, code string, took time.Duration) {
	if m == nil {
		return
	}
	if code == "" {
		code = "ok"
	}
	method = methodLabel(method)
	m.requests.WithLabelValues(method, key, code).Inc()
	m.seconds.WithLabelValues(method).Observe(took.Seconds())
}

var taskTypeLabel = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

func (m *Metrics) reported(method, key, taskType string) {
	if m == nil {
		return
	}
	if !taskTypeLabel.MatchString(taskType) {
		taskType = "other"
	}
	m.reports.WithLabelValues(method, key, taskType).Inc()
}

func (m *Metrics) tokenExpired(method, key string) {
	if m == nil {
		return
	}
	m.expired.WithLabelValues(methodLabel(method), key).Inc()
}

// tokensExpiredFrom starts solvequeue_gateway_tokens_expired_total at 0 for every key and both
// reading methods, so that the series exist before the first expired token: increase() and an
// alert on it then see the first one.
func (m *Metrics) tokensExpiredFrom(keyNames []string) {
	if m == nil {
		return
	}
	for _, key := range keyNames {
		for _, method := range []string{MethodGetTaskResult, PathRes} {
			m.expired.WithLabelValues(method, key)
		}
	}
}
