package throughput

import (
	"context"
	"errors"
	"fmt"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/benchenv"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/internal/redisserver"
)

// Cluster: the e2e run of the throughput section (jobs ready at the first poll, solvequeue's
// whole pipeline) on a three-node Redis Cluster of the section's own, started on loopback
// ports with `redis-cli --cluster create`, beside the same run on the bench's one Redis, in
// alternating rounds after a warm-up round (benchenv.Alternate): the rates are medians, the
// ratio the median of the per-round ratios. The jobs go over clusterQueues queues whose hash
// tags fall on every node of the cluster (and the same number of queues on the one Redis), as
// a user spreading queues over a cluster would have them. It has no target, so it runs smaller
// and fewer rounds (Sizes.ClusterJobs, ClusterRounds) than the throughput section. Without redis-server or redis-cli
// the section says so and is skipped.

// clusterQueues is how many queues the jobs of the cluster section are shared among.
const clusterQueues = 3

// RunCluster runs the cluster section: the e2e run over queues spread on a Redis Cluster of its
// own, against the same run on the one Redis, and writes its figures to r.
func RunCluster(ctx context.Context, e *benchenv.Env, sz benchenv.Sizes, r *benchenv.Report) error {
	cl, err := redisserver.StartCluster(ctx, redisserver.ClusterOptions{})
	if errors.Is(err, redisserver.ErrNotInstalled) || errors.Is(err, redisserver.ErrCLINotInstalled) {
		e.Logf("bench: [cluster] skipped: %v", err)
		r.Context.Notes = append(r.Context.Notes, fmt.Sprintf("cluster: skipped: %v", err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("start a Redis Cluster: %w", err)
	}
	defer func() {
		if err := cl.Stop(); err != nil {
			e.Logf("bench: [cluster] stopping the cluster: %v", err)
		}
	}()
	ce, err := benchenv.NewEnv(ctx, benchenv.Config{RedisURL: cl.URL(), Progress: e.Config.Progress})
	if err != nil {
		return err
	}
	defer ce.Close()

	sz.ThroughputJobs, sz.Rounds = sz.ClusterJobs, sz.ClusterRounds
	r.Context.Sizes["cluster_jobs"] = sz.ThroughputJobs
	r.Context.Sizes["cluster_concurrency"] = sz.ThroughputConcurrency
	r.Context.Sizes["cluster_queues"] = clusterQueues
	r.Context.Sizes["cluster_nodes"] = len(cl.Nodes)
	r.Context.Sizes["cluster_rounds"] = sz.Rounds

	spread, err := cl.SpreadQueues(ctx, "bench-"+e.RunID()+"-cluster-", clusterQueues)
	if err != nil {
		return err
	}
	single := make([]string, clusterQueues)
	for i := range single {
		single[i] = e.Queue(fmt.Sprintf("cluster-single-%d", i))
	}
	sr, err := startE2ERigOn(ctx, e, sz, benchenv.SectionCluster, "cluster-single", single, policyfile.Default())
	if err != nil {
		return fmt.Errorf("e2e on one Redis: %w", err)
	}
	defer sr.Close()
	cr, err := startE2ERigOn(ctx, ce, sz, benchenv.SectionCluster, "cluster-e2e", spread, policyfile.Default())
	if err != nil {
		return fmt.Errorf("e2e on the cluster: %w", err)
	}
	defer cr.Close()

	rounds, err := e.Alternate(ctx, benchenv.RoundsConfig{Section: benchenv.SectionCluster, Warmup: sz.WarmupRounds, Measured: sz.Rounds},
		benchenv.Side{Name: "one Redis", Run: sr.run}, benchenv.Side{Name: "cluster", Run: cr.run})
	if err != nil {
		return err
	}
	one, clustered := rounds[0], rounds[1]
	benchenv.RoundDetails(r.Context.Details, "e2e_jobs_per_s_single", one, 0)
	benchenv.RoundDetails(r.Context.Details, "e2e_jobs_per_s_cluster", clustered, 0)
	for k, v := range ce.Details() { // the cluster run's CPU per job
		r.Context.Details[k] = v
	}
	r.Context.Details["e2e_jobs_per_s_single"] = benchenv.Round0(benchenv.SpreadOf(one).Median)
	r.Context.Details["e2e_jobs_per_s_cluster"] = benchenv.Round0(benchenv.SpreadOf(clustered).Median)
	benchenv.RatioSpread(clustered, one).Detail(r.Context.Details, "cluster_e2e_vs_single", 3)
	r.Context.Notes = append(r.Context.Notes, fmt.Sprintf("cluster: the e2e run (%d jobs ready at the first poll, concurrency %d, one worker) "+
		"over %d queues on a %d-node Redis Cluster of its own (redis-cli --cluster create, no replicas, the queues' hash tags on every node) "+
		"beside the same run over %d queues on %s; the two alternate for %d warm-up and %d measured rounds: medians, "+
		"and the ratio is the median of the per-round ratios",
		sz.ThroughputJobs, sz.ThroughputConcurrency, clusterQueues, len(cl.Nodes), clusterQueues, e.RedisDesc, sz.WarmupRounds, sz.Rounds))
	return nil
}
