package clock

import (
	"testing"
	"time"
)

// A Fake delivers every tick and timer on the way, in time order, and
// nothing before Advance reaches it.
func TestFakeOrder(t *testing.T) {
	start := time.Unix(1000, 0)
	f := NewFake(start)
	tk := f.NewTicker(100 * time.Millisecond)
	tm := f.NewTimer(250 * time.Millisecond)
	stopped := f.NewTimer(150 * time.Millisecond)
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	var got []time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 4 {
			got = append(got, (<-tk.C()).Sub(start))
			tk.Done()
		}
	}()
	f.Advance(450 * time.Millisecond)
	<-done
	want := []time.Duration{100, 200, 300, 400}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("ticks at %v, want %v ms", got, want)
		}
	}
	select {
	case at := <-tm.C():
		if at.Sub(start) != 250*time.Millisecond {
			t.Fatalf("timer fired at %v", at.Sub(start))
		}
	default:
		t.Fatal("the timer did not fire")
	}
	select {
	case <-stopped.C():
		t.Fatal("a stopped timer fired")
	default:
	}
	if f.Now().Sub(start) != 450*time.Millisecond {
		t.Fatalf("now %v", f.Now().Sub(start))
	}
	tk.Stop()
	f.Advance(time.Second) // a stopped ticker does not block Advance
	if !f.WaitTickers(0, time.Second) || f.WaitTickers(1, 10*time.Millisecond) {
		t.Fatal("WaitTickers miscounts")
	}
}
