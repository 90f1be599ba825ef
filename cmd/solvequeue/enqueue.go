package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/words"
	"github.com/solvequeue/solvequeue/enqueue"
)

// waitTimeoutDefault bounds `enqueue --wait`: long enough for a slow captcha and its retries,
// short enough that a job no worker serves does not hold a script for ever.
const waitTimeoutDefault = 10 * time.Minute

type enqueueOptions struct {
	redis      redisOptions
	JSON       string
	Type       string
	WebsiteURL string
	WebsiteKey string
	Fields     []string
	ID         string
	Queue      string
	Provider   string
	Deadline   string
	MaxRetries int
	Wait       bool
	Timeout    time.Duration
}

// job builds the job from --json or from the other flags.
func (o *enqueueOptions) job(stdin io.Reader) (enqueue.Job, error) {
	if o.JSON != "" {
		raw := []byte(o.JSON)
		if o.JSON == "-" {
			b, err := io.ReadAll(io.LimitReader(stdin, enqueue.MaxLineBytes))
			if err != nil {
				return enqueue.Job{}, fmt.Errorf("read job from stdin: %w", err)
			}
			raw = b
		}
		job, err := enqueue.ParseJob(raw)
		if err != nil {
			return job, usageError("--json: %v", err)
		}
		return job, nil
	}
	if o.Type == "" {
		return enqueue.Job{}, usageError("give the job as --json '{...}' (or --json - for stdin), or at least --type")
	}
	task := map[string]any{"type": o.Type}
	if o.WebsiteURL != "" {
		task["websiteURL"] = o.WebsiteURL
	}
	if o.WebsiteKey != "" {
		task["websiteKey"] = o.WebsiteKey
	}
	for _, f := range o.Fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return enqueue.Job{}, usageError("--field %q: want name=value", f)
		}
		var decoded any
		if json.Unmarshal([]byte(v), &decoded) == nil && !isJSONString(v) {
			task[k] = decoded // numbers, booleans, objects
		} else {
			task[k] = v
		}
	}
	job := enqueue.Job{ID: o.ID, Queue: o.Queue, Provider: o.Provider, Deadline: o.Deadline, Task: task}
	if o.MaxRetries >= 0 {
		n := o.MaxRetries
		job.MaxRetries = &n
	}
	return job, nil
}

func isJSONString(v string) bool { return strings.HasPrefix(strings.TrimSpace(v), `"`) }

func newEnqueueCmd(env *Env) *cobra.Command {
	o := &enqueueOptions{}
	cmd := &cobra.Command{
		Use:   "enqueue",
		Short: "Submit one solve job and print its ID (--wait: its outcome)",
		Long: `Submit one solve job. The job is checked before anything reaches Redis: known
task types need their fields (websiteURL and websiteKey for reCAPTCHA, hCaptcha,
Turnstile; a base64 body for ImageToTextTask); other types pass through.

Submitting an --id that is already in its queue gives back the same job, never a second
one: stderr says whether it is still queued or already ended, and in which state.`,
		Example: `  solvequeue enqueue --type RecaptchaV2TaskProxyless --website-url https://example.com --website-key 6Le-abc
  solvequeue enqueue --json '{"id":"order-42","task":{"type":"TurnstileTokenProxyLess","websiteURL":"https://example.com","websiteKey":"0x4AAA"}}' --wait
  echo '{"task":{"type":"ImageToTextTask","body":"iVBORw0KGgo="}}' | solvequeue enqueue --json - --wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			job, err := o.job(env.Stdin)
			if err != nil {
				return err
			}
			if err := job.Validate(); err != nil {
				return usageError("bad job: %v", err)
			}
			ctx := cmd.Context()
			rc, err := o.redis.open(ctx, 0)
			if err != nil {
				return err
			}
			defer rc.Close()
			client, err := enqueue.NewClient(enqueue.Config{Redis: rc})
			if err != nil {
				return err
			}
			sub, err := client.SubmitJob(ctx, job)
			if err != nil {
				return err
			}
			ended := false
			if sub.Existing {
				var msg string
				msg, ended = existingJob(ctx, client, sub)
				fmt.Fprintln(env.Stderr, msg)
			}
			if !ended {
				warnUnserved(env.Stderr, client, map[string]int{sub.Queue: 1})
			}
			if !o.Wait {
				fmt.Fprintln(env.Stdout, sub.ID)
				return nil
			}
			waitCtx := ctx
			if o.Timeout > 0 {
				var cancel func()
				waitCtx, cancel = context.WithTimeout(ctx, o.Timeout)
				defer cancel()
			}
			out, err := client.WaitIn(waitCtx, sub.Queue, sub.ID)
			if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("no outcome within --timeout %s: the job %s stays queued; see 'solvequeue status %s', or wait longer (--timeout 0 waits for ever)",
					o.Timeout, sub.ID, sub.ID)
			}
			if err != nil {
				return fmt.Errorf("%w (the job %s stays queued; see 'solvequeue status %s')", err, sub.ID, sub.ID)
			}
			return json.NewEncoder(env.Stdout).Encode(out)
		},
	}
	o.redis.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.JSON, "json", "", "the whole job as a JSON job line ('-' reads stdin; command line only)")
	// SOLVEQUEUE_JSON means "print JSON" to the other commands: it must not become a job here.
	_ = cmd.Flags().SetAnnotation("json", noEnvAnnotation, []string{"true"})
	f.StringVar(&o.Type, "type", "", "AnySolver task type, e.g. RecaptchaV2TaskProxyless")
	f.StringVar(&o.WebsiteURL, "website-url", "", "task websiteURL")
	f.StringVar(&o.WebsiteKey, "website-key", "", "task websiteKey")
	f.StringArrayVar(&o.Fields, "field", nil, "another task field as name=value (repeatable; JSON values allowed)")
	f.StringVar(&o.ID, "id", "", "idempotency key (default: a random ID)")
	f.StringVar(&o.Queue, "queue", "", "queue (default \"default\")")
	f.StringVar(&o.Provider, "provider", "", "AnySolver provider, e.g. CapSolver")
	f.StringVar(&o.Deadline, "deadline", "", "RFC 3339 time or duration after which no new AnySolver task is created")
	f.IntVar(&o.MaxRetries, "max-retries", -1, "retry budget for this job (default: the worker's policy)")
	f.BoolVar(&o.Wait, "wait", false, "wait for the outcome and print it as a JSON line")
	f.DurationVar(&o.Timeout, "timeout", waitTimeoutDefault, "with --wait, give up waiting after this long, exit status 1 (the job stays queued); 0 waits for ever")
	return cmd
}

// existingJob says what became of a job submitted again, still queued or already ended, with
// its state and what to do next; and whether it ended.
func existingJob(ctx context.Context, client *enqueue.Client, sub enqueue.Submitted) (string, bool) {
	out, err := client.StatusIn(ctx, sub.Queue, sub.ID)
	switch {
	case err != nil:
		return fmt.Sprintf("job %s already exists: nothing new submitted", sub.ID), false
	case out.State == enqueue.StateDead:
		return fmt.Sprintf("job %s already ended (state dead): nothing new submitted; 'solvequeue dlq redrive %s' runs it again", sub.ID, sub.ID), true
	case out.State == enqueue.StateFailed:
		return fmt.Sprintf("job %s already ended (state failed): nothing new submitted; 'solvequeue status %s' shows why; "+
			"if its cause is gone (a top-up, a lifted ban), 'solvequeue dlq redrive --failed %s' runs it again", sub.ID, sub.ID, sub.ID), true
	case out.State.Terminal():
		return fmt.Sprintf("job %s already ended (state %s): nothing new submitted; 'solvequeue status %s' shows its outcome", sub.ID, out.State, sub.ID), true
	default:
		return fmt.Sprintf("job %s was already queued (state %s): nothing new submitted", sub.ID, out.State), false
	}
}

// warnUnserved warns on w about each queue of jobs (queue → how many jobs) that no running
// worker serves: its jobs wait, silently, until one does. It says nothing when it cannot tell.
func warnUnserved(w io.Writer, client *enqueue.Client, jobs map[string]int) {
	queues := make([]string, 0, len(jobs))
	for q := range jobs {
		queues = append(queues, q)
	}
	unserved, err := client.Unserved(queues...)
	if err != nil {
		return
	}
	for _, q := range unserved {
		fmt.Fprintf(w, "warning: no running worker serves queue %q: %s will wait there until one does (a worker's --queues names the queues it serves)\n",
			q, words.Plural(jobs[q], "job"))
	}
}
