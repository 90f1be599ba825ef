package chaos

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/solvequeue/solvequeue/enqueue"
)

// step is one fault of the plan, at an offset from the start.
type step struct {
	at   time.Duration
	name string
	do   func(context.Context) error
}

// redriveAt is when redrive round k runs.
func (r *run) redriveAt(k int) time.Duration { return 18*time.Second + time.Duration(k)*14*time.Second }

// redriveRounds is how many redrive rounds the plan has.
const redriveRounds = 3

// faults submits the jobs and runs the plan: kills, Redis restarts, budget changes, redrives.
func (r *run) faults(ctx context.Context) error {
	var steps []step
	for i := range r.o.Kills {
		steps = append(steps, step{r.o.KillEvery * time.Duration(i+1), "kill", func(ctx context.Context) error { return r.killWorker(ctx, i%r.o.Workers) }})
	}
	for i := range r.o.RedisRestarts {
		steps = append(steps, step{12*time.Second + time.Duration(i)*20*time.Second, "redis", r.restartRedis})
	}
	steps = append(steps,
		step{22 * time.Second, "budget", func(ctx context.Context) error { return r.setBudget(ctx, budgetCaps[1], 1) }},
		step{38 * time.Second, "budget", func(ctx context.Context) error { return r.setBudget(ctx, budgetCaps[2], r.o.Workers) }})
	for k := range redriveRounds {
		steps = append(steps, step{r.redriveAt(k), "redrive", r.redrive})
	}
	slices.SortStableFunc(steps, func(a, b step) int { return int(a.at - b.at) })

	var wg sync.WaitGroup
	var submitErr error
	wg.Add(1)
	go func() { defer wg.Done(); submitErr = r.submit(ctx) }()
	for _, s := range steps {
		select {
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		case <-time.After(time.Until(r.start.Add(s.at))):
		}
		if err := s.do(ctx); err != nil {
			wg.Wait()
			return fmt.Errorf("chaos: %s at %s: %w", s.name, s.at, err)
		}
	}
	wg.Wait()
	return submitErr
}

// submit spreads the jobs over the first six seconds, the tight ones at tightAt.
func (r *run) submit(ctx context.Context) error {
	gap := 6 * time.Second / time.Duration(len(r.jobs))
	late := 0
	for _, wave := range []bool{false, true} {
		if wave {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Until(r.start.Add(tightAt))):
			}
		}
		for i := range r.jobs {
			if j := &r.jobs[i]; (j.kind == "tight") == wave {
				j.submitted = time.Now()
				if _, err := r.client.SubmitJob(ctx, j.job); err != nil {
					return fmt.Errorf("submit %s: %w", j.job.ID, err)
				}
				if wave {
					late++
				} else {
					time.Sleep(gap)
				}
			}
		}
	}
	r.event("submitted %d jobs, %d of them without a retry budget just now", len(r.jobs), late)
	return nil
}

// tightAt is when the jobs without a retry budget are submitted: after the first kill and the
// first Redis restart, before the graceful restarts of the budget changes.
const tightAt = 14 * time.Second

func (r *run) currentCap() int {
	c := budgetCaps[0]
	for _, p := range r.live {
		if p != nil {
			c = p.cap
		}
	}
	return c
}

// killWorker SIGKILLs the worker in slot and starts a new one in its place.
func (r *run) killWorker(ctx context.Context, slot int) error {
	p := r.live[slot]
	at := p.kill()
	r.mu.Lock()
	r.kills = append(r.kills, at)
	r.mu.Unlock()
	r.report.Totals.Kills++
	r.event("SIGKILL %s (pid %d); its jobs come back after asynq's lease recovery (70-170 s)", p.name, p.cmd.Process.Pid)
	var err error
	r.live[slot], err = r.workers.start(ctx, slot, p.cap)
	if err == nil {
		r.event("%s restarted", p.name)
	}
	return err
}

// restartRedis kills Redis with SIGKILL and starts it again from its AOF on the same port.
func (r *run) restartRedis(ctx context.Context) error {
	if err := r.redis.Kill(); err != nil {
		return err
	}
	off := time.Now()
	r.event("redis-server killed (SIGKILL)")
	if err := r.redis.Restart(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	r.redisOff = append(r.redisOff, [2]time.Time{off, time.Now()})
	r.mu.Unlock()
	r.report.Totals.RedisRestarts++
	r.event("redis-server restarted from its append-only file on %s", r.redis.Addr)
	return nil
}

// setBudget rewrites the policy with a new cap and restarts the first n workers gracefully
// (SIGTERM), so that they read it.
func (r *run) setBudget(ctx context.Context, cap, n int) error {
	if err := r.writePolicy(cap); err != nil {
		return err
	}
	r.report.Totals.BudgetChanges++
	r.event("budget of queue %s set to %d createTask calls per %s; restarting %d worker(s) with SIGTERM", BudgetQueue, cap, BudgetWindow, n)
	for slot := range n {
		r.live[slot].stop(15 * time.Second)
		var err error
		if r.live[slot], err = r.workers.start(ctx, slot, cap); err != nil {
			return err
		}
	}
	return nil
}

// redrive redrives every dead letter of the plan's jobs, as `solvequeue dlq redrive` does.
func (r *run) redrive(ctx context.Context) error {
	letters, err := r.admin.DeadLetters(ctx)
	if err != nil {
		return err
	}
	n := 0
	for _, d := range letters {
		if err := r.admin.Redrive(ctx, d); err != nil {
			r.event("redrive %s: %v", d.ID, err)
			continue
		}
		r.mu.Lock()
		r.redriven[d.ID] = append(r.redriven[d.ID], time.Now())
		r.mu.Unlock()
		n++
	}
	r.report.Totals.RedriveRounds++
	r.report.Totals.Redrives += n
	r.event("redrove %d dead letters (%d callbacks refused so far)", n, r.recv.refused.Load())
	return nil
}

// settle waits, up to Settle, until every job is in a final state and every callback job has a
// delivery of each of its outcomes.
//
// Once every job is final, it waits for missing callbacks only while deliveries keep coming:
// after callbackQuiet without one, what is missing is reported by the checks.
func (r *run) settle(ctx context.Context) bool {
	deadline := time.Now().Add(r.o.Settle)
	lastNote := time.Now()
	delivered, deliveredAt := r.recv.total(), time.Now()
	for {
		open, jobsOpen := r.unsettled(ctx)
		if open == 0 {
			r.event("settled")
			return true
		}
		if n := r.recv.total(); n != delivered {
			delivered, deliveredAt = n, time.Now()
		}
		if jobsOpen == 0 && time.Since(deliveredAt) > callbackQuiet {
			r.event("every job ended; %d callback jobs still miss a delivery after %s without one", open, callbackQuiet)
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.event("not settled after %s: %d jobs or callbacks still open", r.o.Settle, open)
			return false
		}
		if time.Since(lastNote) > 15*time.Second {
			r.event("settling: %d jobs not ended, %d callbacks missing", jobsOpen, open-jobsOpen)
			lastNote = time.Now()
		}
		time.Sleep(time.Second)
	}
}

// callbackQuiet is how long the settling waits for a missing callback once every job ended
// and no delivery came: longer than a refused delivery's backoff by then.
const callbackQuiet = time.Minute

// unsettled counts the jobs not final, plus the callback jobs without their last outcome's
// delivery; jobsOpen counts the first only.
func (r *run) unsettled(ctx context.Context) (open, jobsOpen int) {
	for _, j := range r.jobs {
		out, err := r.client.StatusIn(ctx, j.job.Queue, j.job.ID)
		if err != nil || !final(out.State) {
			open++
			jobsOpen++
			continue
		}
		if j.job.CallbackURL != "" && !r.calledBack(j.job.ID) {
			open++
		}
	}
	return open, jobsOpen
}

// calledBack says whether the receiver holds a delivery of the job's last outcome: by its
// outcomeSeq when the bodies carry one, else by their count.
func (r *run) calledBack(id string) bool {
	want := 1 + r.redrives(id)
	ds := r.recv.deliveries(id)
	for _, d := range ds {
		if d.OutcomeSeq >= want {
			return true
		}
	}
	return len(ds) >= want && ds[len(ds)-1].OutcomeSeq == 0
}

func (r *run) redrives(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.redriven[id])
}

func final(s enqueue.State) bool {
	return s == enqueue.StateSolved || s == enqueue.StateFailed || s == enqueue.StateDead
}
