package benchenv

// Sections, in the order they run.
const (
	SectionThroughput = "throughput" // floor, naive, e2e
	SectionInflight   = "inflight"
	SectionPolling    = "polling"
	SectionSubmit     = "submit"
	SectionSpend      = "spend"
	SectionGateway    = "gateway"  // package gatewaybench
	SectionGateway2   = "gateway2" // package gatewaybench, twoprocs.go
	SectionCluster    = "cluster"  // package throughput, cluster.go
	SectionFairness   = "fairness" // package fairness
)
