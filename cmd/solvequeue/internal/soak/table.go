package soak

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

const sampleFormat = "%-8s %-8s %9s %9s %9s %8s %8s %11s %8s %9s\n"

func writeSampleHeader(w io.Writer) {
	fmt.Fprintf(w, sampleFormat, "TIME", "PHASE", "SUBMITTED", "ENDED", "IN FLIGHT", "RSS MB", "HEAP MB", "GOROUTINES", "SOCKETS", "REDIS MB")
}

func writeSampleLine(w io.Writer, s Sample) {
	fmt.Fprintf(w, sampleFormat, s.At.Round(time.Second), s.Phase, fmt.Sprint(s.Submitted), fmt.Sprint(s.Ended),
		fmt.Sprint(s.Submitted-s.Ended), fmt.Sprintf("%.1f", mb(s.RSSBytes)), fmt.Sprintf("%.1f", float64(s.HeapBytes)/(1<<20)),
		fmt.Sprint(s.Goroutines), fmt.Sprint(s.Sockets), fmt.Sprintf("%.2f", mb(s.RedisMemory)))
}

// WriteTable writes a finished run for people: the samples, then WriteSummary.
func WriteTable(w io.Writer, r *Report) error {
	writeSampleHeader(w)
	for _, s := range r.Samples {
		writeSampleLine(w, s)
	}
	return WriteSummary(w, r)
}

// WriteSummary writes the totals and the verdict of a finished run (the samples were shown as
// they came, through Options.Progress).
func WriteSummary(w io.Writer, r *Report) error {
	t := r.Totals
	fmt.Fprintf(w, "\njobs: %d submitted · %d solved · %d failed · %d dead · %d lost · %.3f createTask calls per job · %d AnySolver outages of %s\n\n",
		t.Submitted, t.Solved, t.Failed, t.Dead, t.Lost, t.CreatesPerJob, t.Blips, BlipFor)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK (peak under load)\tFIRST HALF\tSECOND HALF\tLIMIT\tFLAT")
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%s\n", c.Name, c.Baseline, c.Final, c.Limit, yesNo(c.OK))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verdict := "flat: memory, goroutines, sockets and Redis memory stayed within their limits, and every job ended"
	if !r.Flat {
		verdict = "NOT flat: " + r.failedChecks()
	}
	_, err := fmt.Fprintf(w, "\nverdict: %s\n", verdict)
	return err
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}
