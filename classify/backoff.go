package classify

import (
	"math"
	"time"
)

// RetryDelay returns the wait before a retry, n being the retries done so far
// (0 before the first retry) and jitter a random number in [0, 1) that the
// caller supplies, so the function stays pure.
//
// The delay doubles from the base (2 s by default) up to the cap (2 m by
// default), with equal jitter: half of it is fixed and half is random, so
// retries spread out but never come back at once. With the defaults the first
// retry waits 1-2 s, within AnySolver's advice of 1-5 s for errorId 2.
// A negative n counts as 0; jitter outside [0, 1) is clamped.
func (p *Policy) RetryDelay(n int, jitter float64) time.Duration {
	p = p.orDefault()
	d := p.baseDelay
	for i := 0; i < n && d < p.maxDelay; i++ {
		d *= 2
	}
	d = min(d, p.maxDelay)
	half := d / 2
	return half + time.Duration(ClampJitter(jitter)*float64(d-half))
}

// ThrottleDelay returns the wait before the try after a throttle verdict:
// v.Wait (at least the policy's minimum wait) plus jitter of up to half of it,
// capped by the policy's maximum wait (1 m by default) but never below v.Wait.
// jitter is a random number in [0, 1) supplied by the caller; outside values are
// clamped. A caller that knows better, from a Retry-After header say, may raise
// v.Wait first.
func (p *Policy) ThrottleDelay(v Verdict, jitter float64) time.Duration {
	p = p.orDefault()
	w := max(v.Wait, p.minWait)
	d := w + time.Duration(ClampJitter(jitter)*0.5*float64(w))
	if d < w { // overflow
		d = w
	}
	return max(min(d, p.maxWait), v.Wait)
}

// ClampJitter maps any float into [0, 1), NaN to 0: the range every jitter of a delay is
// drawn from.
func ClampJitter(j float64) float64 {
	switch {
	case !(j > 0): // also NaN
		return 0
	case j >= 1:
		return math.Nextafter(1, 0)
	}
	return j
}
