package client

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Backoff says how to wait between connection attempts: full jitter,
// U[0, min(Cap, Base·2^attempt)), attempt counting from 0 and reset when a
// connection opens ("Exponential Backoff And Jitter", AWS Architecture
// Blog).
type Backoff struct {
	// Base is the first ceiling. If zero, 1s.
	Base time.Duration
	// Cap bounds every ceiling. If zero, 30s.
	Cap time.Duration
	// MaxAttempts is how many consecutive attempts may fail before the
	// client gives up (ErrGaveUp). If zero, unlimited.
	MaxAttempts int
	// Rand returns a uniform draw in [0, 1). If nil, math/rand/v2.
	Rand func() float64
	// Sleep waits d or until ctx ends. If nil, a timer. Tests and
	// simulations replace it to record delays without waiting them.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (b *Backoff) withDefaults() {
	if b.Base <= 0 {
		b.Base = time.Second
	}
	if b.Cap <= 0 {
		b.Cap = 30 * time.Second
	}
	if b.Rand == nil {
		b.Rand = rand.Float64
	}
	if b.Sleep == nil {
		b.Sleep = sleep
	}
}

// Delay is the full-jitter delay before retry number attempt (from 0).
func (b *Backoff) Delay(attempt int) time.Duration {
	ceiling := b.Cap
	if attempt < 62 && b.Base <= b.Cap>>uint(attempt) {
		ceiling = b.Base << uint(attempt)
	}
	return time.Duration(b.Rand() * float64(ceiling))
}

// hinted is the delay for a server's hint of n seconds: not before it,
// spread over one Base after it.
func (b *Backoff) hinted(hint, max time.Duration) time.Duration {
	return min(hint, max) + time.Duration(b.Rand()*float64(b.Base))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RetryHint reads "retry-after=N" (whole seconds) from a close reason, as
// the gateway's drain sends it ("going away; retry-after=N").
func RetryHint(reason string) (time.Duration, bool) {
	for i := 0; ; {
		j := strings.Index(strings.ToLower(reason[i:]), "retry-after=")
		if j < 0 {
			return 0, false
		}
		j += i
		i = j + len("retry-after=")
		if j > 0 && !strings.ContainsRune(" ;,\t", rune(reason[j-1])) {
			continue
		}
		k := i
		for k < len(reason) && k-i < 9 && '0' <= reason[k] && reason[k] <= '9' {
			k++
		}
		if k == i || (k < len(reason) && !strings.ContainsRune(" ;,\t", rune(reason[k]))) {
			continue
		}
		n, _ := strconv.Atoi(reason[i:k])
		return time.Duration(n) * time.Second, true
	}
}

// ParseRetryAfter reads a Retry-After header: delta-seconds or an
// HTTP-date (RFC 9110 §10.2.3).
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}
