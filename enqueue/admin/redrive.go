package admin

import (
	"bytes"
	"encoding/json"
	"time"
)

// freshStart returns the payload a redriven job (Redrive, RedriveFailed) is enqueued with: a
// redrive is a fresh start. The job's timings count from now (SubmittedAt, which also bounds the
// throttling of a job without a deadline), its deadline is moved to one as long as the job first
// had, counted from now (a deadline that has not passed yet is never brought nearer: a job that
// died because its next try would have come too late gets its whole span again), and Redrives
// grows by one, so that the run's outcome has a sequence
// number of its own (Payload.OutcomeSeq) and its callback a delivery of its own.
//
// The deadline's first span is DeadlineSpan, or Deadline - SubmittedAt for a job never redriven;
// it is kept in DeadlineSpan for the next redrive. A passed deadline without a positive span (a job submitted with a deadline already past, or a
// payload without its submission time) is dropped: the job runs without a deadline, its
// throttling bounded by the worker's lifetime like any job without one.
//
// Only those fields change; the others are kept as they are, whatever this version knows of
// them. A payload that is not a JSON object of a solve job is returned unchanged: the worker
// refuses it with a reason, as it did the first time.
func freshStart(raw []byte, now time.Time) []byte {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return raw
	}
	var p struct {
		Deadline     time.Time     `json:"deadline"`
		SubmittedAt  time.Time     `json:"submittedAt"`
		Redrives     int           `json:"redrives"`
		DeadlineSpan time.Duration `json:"deadlineSpan"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return raw
	}
	now = now.UTC()
	set := func(name string, v any) {
		b, _ := json.Marshal(v) // times, durations and ints always encode
		fields[name] = b
	}
	if !p.Deadline.IsZero() {
		span := p.DeadlineSpan
		if span <= 0 && !p.SubmittedAt.IsZero() {
			span = p.Deadline.Sub(p.SubmittedAt)
		}
		if span > 0 {
			set("deadlineSpan", span)
		}
		switch {
		case span > 0 && now.Add(span).After(p.Deadline):
			set("deadline", now.Add(span))
		case span <= 0 && !now.Before(p.Deadline):
			delete(fields, "deadline")
		}
	}
	set("submittedAt", now)
	set("redrives", max(p.Redrives, 0)+1)
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(fields); err != nil {
		return raw
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n"))
}
