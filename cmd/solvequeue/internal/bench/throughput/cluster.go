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
// alternating rounds, each keeping its best. The jobs go over clusterQueues queues whose hash
// tags fall on every node of the cluster (and the same number of queues on the one Redis), as
// a user spreading queues over a cluster would have them. Without redis-server or redis-cli
// the section says so and is skipped.

// clusterQueues is how many queues the jobs of the cluster section are shared among.
const clusterQueues = 3

// clusterRounds is how many times each of the two runs.
const clusterRounds = 3

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

	r.Context.Sizes["cluster_jobs"] = sz.ThroughputJobs
	r.Context.Sizes["cluster_concurrency"] = sz.ThroughputConcurrency
	r.Context.Sizes["cluster_queues"] = clusterQueues
	r.Context.Sizes["cluster_nodes"] = len(cl.Nodes)
	r.Context.Sizes["cluster_rounds"] = clusterRounds

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

	var best1, bestC float64
	for round := 1; round <= clusterRounds; round++ {
		s, err := sr.run(ctx, round)
		if err != nil {
			return fmt.Errorf("e2e on one Redis: %w", err)
		}
		c, err := cr.run(ctx, round)
		if err != nil {
			return fmt.Errorf("e2e on the cluster: %w", err)
		}
		r.Context.Details[fmt.Sprintf("e2e_jobs_per_s_single_round%d", round)] = benchenv.Round0(s)
		r.Context.Details[fmt.Sprintf("e2e_jobs_per_s_cluster_round%d", round)] = benchenv.Round0(c)
		best1, bestC = max(best1, s), max(bestC, c)
	}
	for k, v := range ce.Details() { // the cluster run's CPU per job
		r.Context.Details[k] = v
	}
	r.Context.Details["e2e_jobs_per_s_single"] = benchenv.Round0(best1)
	r.Context.Details["e2e_jobs_per_s_cluster"] = benchenv.Round0(bestC)
	if v := benchenv.Ratio(bestC, best1); v != nil {
		r.Context.Details["cluster_e2e_vs_single"] = *v
	}
	r.Context.Notes = append(r.Context.Notes, fmt.Sprintf("cluster: the e2e run (%d jobs ready at the first poll, concurrency %d, one worker) "+
		"over %d queues on a %d-node Redis Cluster of its own (redis-cli --cluster create, no replicas, the queues' hash tags on every node) "+
		"beside the same run over %d queues on %s; the two alternate for %d rounds and each keeps its best",
		sz.ThroughputJobs, sz.ThroughputConcurrency, clusterQueues, len(cl.Nodes), clusterQueues, e.RedisDesc, clusterRounds))
	return nil
}
