package attempt

import (
	"sync"

	"pgregory.net/rapid"

	"github.com/solvequeue/solvequeue/internal/ledger"
)

// rivalBurst is another worker process on the same Redis whose attempts reserve createTasks on
// the queue's budget all at once: its ledger serves them in one script run (the ledger's group
// commit), judging each by the rule in turn. Each createTask it gets is paid at AnySolver
// elsewhere; the rival then settles them, or dies first and leaves them held at their estimate.
// The model's own worker must then find the budget that much fuller: paid createTasks of both
// processes stay within the cap (checkRivalCap, after every step).
func (m *lifecycle) rivalBurst(t *rapid.T) {
	if m.budgetCap == 0 {
		t.Skip("no budget")
	}
	k := rapid.IntRange(1, 4).Draw(t, "rival.k")
	settles := rapid.Bool().Draw(t, "rival.settles")
	m.mr.SetTime(m.clock.Now())
	l := ledger.New(m.rc)
	b := *m.file.Queue(modelQueue).Budget
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		got []ledger.Reservation
	)
	for range k {
		wg.Go(func() {
			r, ok, _, err := l.Reserve(m.ctx, modelQueue, b, "RecaptchaV2TaskProxyless")
			if err != nil {
				t.Errorf("rival reserve: %v", err)
				return
			}
			if ok {
				mu.Lock()
				got = append(got, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, r := range got {
		m.rivals = append(m.rivals, m.clock.Now())
		if settles {
			if _, err := l.Settle(m.ctx, modelQueue, r, 0.001); err != nil {
				t.Fatalf("rival settle: %v", err)
			}
		}
	}
	m.logf("rival process: %d createTasks reserved at once, %d granted, settled %v", k, len(got), settles)
}

// checkRivalCap checks that the createTasks paid by the model's worker and by rival processes
// within the budget's window stay within its cap.
func (m *lifecycle) checkRivalCap() {
	if m.budgetCap == 0 || len(m.rivals) == 0 {
		return
	}
	from := m.clock.Now().Add(-budgetWindow + budgetWindow/60)
	n := 0
	for _, at := range m.rivals {
		if at.After(from) {
			n++
		}
	}
	n += m.paidSince(from)
	if n > m.budgetCap {
		m.violation(nil, "", "%d createTasks paid by the worker and rival processes within the budget's window, cap %d", n, m.budgetCap)
	}
}
