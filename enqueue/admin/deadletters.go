package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/imagebody"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/rideout"
)

// DeadLetters lists the dead-letter queue of every queue, oldest first.
func (c *Client) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	return deadletter.List(ctx, c.rc)
}

// DeadLetter reads one entry; queue "" looks for the id in every queue. An id that is not there
// is an error wrapping enqueue.ErrJobNotFound.
func (c *Client) DeadLetter(ctx context.Context, queue, id string) (DeadLetter, error) {
	return deadletter.Get(ctx, c.rc, queue, id)
}

// Redrive gives a dead job a fresh start: the archived asynq task (if asynq has not trimmed it)
// is deleted and a new task with the same ID and job and a fresh retry budget is enqueued
// (asynq's own "run" keeps the spent retry count). Its lifetime is fresh too: its timings count
// from the redrive, a deadline that has passed is replaced by one as long as the job first had,
// and its new outcome gets the next sequence number, so that it is called back in a delivery of
// its own whatever became of the first (see the payload's OutcomeSeq).
//
// The entry leaves the dead-letter queue first, as a claim: of two redrives of one dead letter
// (two operators, two `dlq redrive --all` runs, a stale list) exactly one goes through and the
// other gets jobwire.ErrJobNotFound, so a job that was redriven, and maybe solved, meanwhile is never
// deleted and paid for again. The entry comes back if the redrive fails.
//
// A job whose image body travels under its own key needs that body still: the body gets its TTL
// (Config.BlobTTL) back, and a redrive whose body is gone is refused, the entry kept.
//
// A Redis that stops answering in the middle (a Sentinel failover) is waited for, up to
// rideout.Default, and the redrive goes on; the entry is never lost on the way.
func (c *Client) Redrive(ctx context.Context, d DeadLetter) error {
	_, err := rideout.Run(ctx, c.rc, rideout.Default, func() error { return c.redrive(ctx, d) })
	return err
}

func (c *Client) redrive(ctx context.Context, d DeadLetter) error {
	raw, err := c.claim(ctx, d)
	if err != nil {
		return fmt.Errorf("redrive %s: %w", d.ID, err)
	}
	if key := d.BodyRef(); key != "" {
		// The body was kept without a TTL while the job was dead: give it one again, and refuse
		// a redrive that could only fail for want of it.
		alive, err := c.rc.Expire(ctx, key, c.cfg.BlobTTL).Result()
		if err != nil {
			return c.unclaim(ctx, d, raw, fmt.Errorf("redrive %s: image body: %w", d.ID, err))
		}
		if !alive {
			return c.unclaim(ctx, d, raw, fmt.Errorf("redrive %s: its image body is gone from Redis: submit the job anew", d.ID))
		}
	}
	if err := c.inspector.DeleteTask(d.Queue, d.ID); err != nil &&
		!errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		return c.unclaim(ctx, d, raw, fmt.Errorf("redrive %s: remove the archived task: %w", d.ID, err))
	}
	task := asynq.NewTask(jobwire.TaskType, freshStart(d.Payload, c.cfg.Now()),
		asynq.Queue(d.Queue), asynq.TaskID(d.ID), asynq.MaxRetry(jobwire.AsynqMaxRetryDefault),
		asynq.Timeout(c.cfg.AttemptTimeout), asynq.Retention(c.cfg.Retention))
	if _, err := c.asynq.EnqueueContext(ctx, task); err != nil {
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			// The archived task is gone and a task of this ID is in the queue: this redrive's
			// own enqueue, retried by go-redis after its answer was lost, or another's redrive.
			// Either way the job runs again; its dead letter must not come back.
			return nil
		}
		return c.unclaim(ctx, d, raw, fmt.Errorf("redrive %s: enqueue: %w", d.ID, err))
	}
	return nil
}

// claim takes the job's entry out of the dead-letter queue in one step and returns it; it
// returns jobwire.ErrJobNotFound when the entry is gone (redriven or purged by someone else).
func (c *Client) claim(ctx context.Context, d DeadLetter) (string, error) {
	field := keys.DeadLetterField(d.Queue, d.ID)
	var get *redis.StringCmd
	_, err := c.rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		get = p.HGet(ctx, keys.DeadLetters(d.Queue), field)
		p.HDel(ctx, keys.DeadLetters(d.Queue), field)
		return nil
	})
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("%w: %q left the dead-letter queue already (redriven or purged)", jobwire.ErrJobNotFound, d.ID)
	}
	if err != nil {
		return "", fmt.Errorf("take the dead letter: %w", err)
	}
	return get.Val(), nil
}

// unclaim puts a claimed entry back after a redrive or purge that did not go through, and
// returns err.
//
// The entry is put back even through an outage of Redis (up to rideout.Default): the claim that
// took it out may have reached a replica already.
func (c *Client) unclaim(ctx context.Context, d DeadLetter, raw string, err error) error {
	ctx = context.WithoutCancel(ctx)
	waited, putErr := rideout.Run(ctx, c.rc, rideout.Default, func() error {
		return c.rc.HSet(ctx, keys.DeadLetters(d.Queue), keys.DeadLetterField(d.Queue, d.ID), raw).Err()
	})
	if waited {
		err = rideout.Outage(err) // Redis was down: the caller may try again
	}
	if putErr != nil {
		return fmt.Errorf("%w (and its dead letter could not be put back: %v)", err, putErr)
	}
	return err
}

// Purge deletes dead letters for good, with their archived asynq tasks and image bodies. A
// letter that left the dead-letter queue meanwhile (redriven: its job runs again) is skipped,
// never deleted.
//
// A Redis that stops answering in the middle (a Sentinel failover) is waited for, up to
// rideout.Default for each letter, and the purge goes on.
func (c *Client) Purge(ctx context.Context, letters []DeadLetter) (int, error) {
	n := 0
	for _, d := range letters {
		purged := false
		_, err := rideout.Run(ctx, c.rc, rideout.Default, func() error {
			var err error
			purged, err = c.purge(ctx, d)
			return err
		})
		if err != nil {
			return n, err
		}
		if purged {
			n++
		}
	}
	return n, nil
}

// purge deletes one dead letter and reports whether it was there to delete.
func (c *Client) purge(ctx context.Context, d DeadLetter) (bool, error) {
	raw, err := c.claim(ctx, d)
	if errors.Is(err, jobwire.ErrJobNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("purge %s: %w", d.ID, err)
	}
	if err := c.inspector.DeleteTask(d.Queue, d.ID); err != nil &&
		!errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		return false, c.unclaim(ctx, d, raw, fmt.Errorf("purge %s: %w", d.ID, err))
	}
	if key := d.BodyRef(); key != "" {
		_ = imagebody.Drop(ctx, c.rc, key) // left to its TTL, if any, when Redis refuses
	}
	return true, nil
}
