//go:build linux

package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/wsgate/wsgate/client"
)

// The resume scenario (docs/resume.md): --conns clients of the Go client
// package with the resume envelope against a broadcast server
// (cmd/gateway --app broadcast); client 0 is the publisher, sending
// --rate numbered messages per second that the server sends to everyone.
// After --storm-after, --drop-share of the others lose their TCP
// connection abruptly (RST: no FIN, no close frame) while the pushes go
// on; each reconnects with full-jitter backoff (--backoff, --backoff-max)
// and resumes. Every receiver checks the numbers it gets: a number again
// is a duplicate, a jump is a gap, which the client must have reported
// (missed) or it counts as missed silently. It reports time to resume and
// the messages replayed. With --resume-to the dropped clients reconnect to
// another node of a cluster, which fetches their sessions. Unlike the other scenarios it runs one goroutine
// per client (the Go client's), so it is for thousands, not millions.

const scResume = "resume"

// resumeReport is the scenario's section of the report.
type resumeReport struct {
	Clients        int           `json:"clients"`
	Dropped        int           `json:"dropped"`
	Published      int64         `json:"published"`
	Received       int64         `json:"received"`
	Expected       int64         `json:"expected"`        // what the receivers should have got, once each
	Duplicated     int64         `json:"duplicated"`      // a number again, or one below the last
	Gaps           int64         `json:"gaps"`            // messages skipped
	GapsReported   int64         `json:"gaps_reported"`   // of them, after a missed event
	MissedSilently int64         `json:"missed_silently"` // gaps nobody was told of
	Resumed        int64         `json:"resumed"`
	Missed         int64         `json:"missed"`
	Replayed       int64         `json:"replayed"`
	Reconnects     int64         `json:"reconnects"`
	ResumeMS       latencyReport `json:"time_to_resume_ms"`
	Errors         int64         `json:"errors"`
}

// resumePeer is one receiving client.
type resumePeer struct {
	mu       sync.Mutex
	tcp      net.Conn
	redirect string // after the drop, with --resume-to: where to dial
	next     uint64 // the number expected next; 0 before the first
	missed   bool   // a missed event came since the last message
	droppedA time.Time
	c        *client.Client
}

func runResume(ctx context.Context, cfg *config, stdout io.Writer) (*Report, error) {
	if cfg.size < 8 {
		return nil, errors.New("loadtest: resume: --size must be at least 8 (the message number)")
	}
	url := cfg.targets[0].url
	rr := &resumeReport{Clients: cfg.conns - 1}
	var mu sync.Mutex // guards rr's counts and hist from the clients' goroutines
	hist := hdrhistogram.New(1, 3_600_000, 3)
	peers := make([]*resumePeer, cfg.conns-1)
	backoff := client.Backoff{Base: cfg.backoffBase, Cap: cfg.backoffMax}
	for i := range peers {
		p := &resumePeer{}
		peers[i] = p
		o := client.Options{
			Resume:  true,
			Backoff: backoff,
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var d net.Dialer
				p.mu.Lock()
				if p.redirect != "" {
					addr = p.redirect
				}
				p.mu.Unlock()
				c, err := d.DialContext(ctx, network, addr)
				if err == nil {
					p.mu.Lock()
					p.tcp = c
					p.mu.Unlock()
				}
				return c, err
			},
			OnMessage: func(_ client.MessageType, data []byte) {
				if len(data) < 8 {
					return
				}
				n := binary.BigEndian.Uint64(data)
				p.mu.Lock()
				reported := p.missed
				next := p.next
				p.missed = false
				if next == 0 {
					next = n // the first message this client sees
				}
				p.next = max(p.next, n+1)
				p.mu.Unlock()
				mu.Lock()
				defer mu.Unlock()
				rr.Received++
				switch {
				case n == next:
				case n < next:
					rr.Duplicated++
				default:
					rr.Gaps += int64(n - next)
					if reported {
						rr.GapsReported += int64(n - next)
					} else {
						rr.MissedSilently += int64(n - next)
					}
				}
			},
			OnResumed: func(e client.Resumed) {
				p.mu.Lock()
				at := p.droppedA
				p.droppedA = time.Time{}
				p.mu.Unlock()
				mu.Lock()
				defer mu.Unlock()
				rr.Resumed++
				rr.Replayed += int64(e.Replay)
				if !at.IsZero() {
					_ = hist.RecordValue(max(time.Since(at).Milliseconds(), 1))
				}
			},
			OnMissed: func(client.Missed) {
				p.mu.Lock()
				p.missed = true
				p.mu.Unlock()
				mu.Lock()
				rr.Missed++
				mu.Unlock()
			},
			OnReconnecting: func(client.Reconnect) { mu.Lock(); rr.Reconnects++; mu.Unlock() },
			OnError:        func(error) { mu.Lock(); rr.Errors++; mu.Unlock() },
		}
		dctx, cancel := context.WithTimeout(ctx, cfg.handshakeTimeout)
		c, err := client.Dial(dctx, url, o)
		cancel()
		if err != nil {
			closeAll(peers[:i])
			return nil, fmt.Errorf("loadtest: resume: client %d: %w", i+1, err)
		}
		p.c = c
	}
	pub, err := client.Dial(ctx, url, client.Options{Resume: true, Backoff: backoff})
	if err != nil {
		closeAll(peers)
		return nil, fmt.Errorf("loadtest: resume: publisher: %w", err)
	}
	start := time.Now()
	// The publisher: --rate numbered messages per second, open loop.
	msg := make([]byte, cfg.size)
	var published atomic.Int64
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		interval := time.Second / time.Duration(max(cfg.rate, 1))
		t := time.NewTicker(interval)
		defer t.Stop()
		end := time.After(cfg.duration)
		for {
			select {
			case <-t.C:
				binary.BigEndian.PutUint64(msg, uint64(published.Load()+1))
				if pub.Send(client.Binary, msg) == nil {
					published.Add(1)
				}
			case <-end:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	// The drop: a share of the receivers, at once, by RST.
	select {
	case <-time.After(cfg.stormAfter):
	case <-ctx.Done():
	}
	drop := int(float64(len(peers)) * cfg.dropShare)
	for _, i := range rand.Perm(len(peers))[:drop] {
		p := peers[i]
		p.mu.Lock()
		if tc, ok := p.tcp.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
			_ = tc.Close()
			p.droppedA = time.Now()
			p.redirect = cfg.resumeTo
			rr.Dropped++
		}
		p.mu.Unlock()
	}
	<-pubDone
	rr.Published = published.Load()
	// Let what is in flight and the last resumes arrive: until everything
	// is in, or nothing more has come for --drain plus --backoff-max.
	quiet := cfg.drainTimeout + cfg.backoffMax
	last, lastAt := int64(-1), time.Now()
	for time.Since(lastAt) < quiet {
		mu.Lock()
		got := rr.Received
		mu.Unlock()
		if got >= rr.Published*int64(len(peers)) {
			break
		}
		if got != last {
			last, lastAt = got, time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = pub.Close()
	closeAll(peers)
	mu.Lock()
	defer mu.Unlock()
	rr.Expected = rr.Published * int64(len(peers))
	rr.ResumeMS = latencyReport{Count: hist.TotalCount(), P50: hist.ValueAtQuantile(50), P90: hist.ValueAtQuantile(90),
		P99: hist.ValueAtQuantile(99), P999: hist.ValueAtQuantile(99.9), Max: hist.Max(), Mean: hist.Mean()}
	rep := &Report{Scenario: scResume, Targets: []string{url}, Started: start, Procs: 1,
		SteadySec: time.Since(start).Seconds(), Sent: rr.Published, Received: rr.Received, Resume: rr,
		Errors: map[string]int64{}, CloseCodes: map[string]int64{}, Histograms: map[string]string{}}
	writeResumeText(stdout, rr)
	return rep, nil
}

func closeAll(peers []*resumePeer) {
	for _, p := range peers {
		if p != nil && p.c != nil {
			_ = p.c.Close()
		}
	}
}

func writeResumeText(w io.Writer, r *resumeReport) {
	fmt.Fprintf(w, "resume: %d clients, %d dropped (RST), %d published\n", r.Clients, r.Dropped, r.Published)
	fmt.Fprintf(w, "  received %d of %d expected: duplicated or out of order %d, gaps %d (reported %d, silent %d)\n",
		r.Received, r.Expected, r.Duplicated, r.Gaps, r.GapsReported, r.MissedSilently)
	fmt.Fprintf(w, "  resumed %d, missed %d, replayed %d messages, reconnect attempts %d, protocol errors %d\n",
		r.Resumed, r.Missed, r.Replayed, r.Reconnects, r.Errors)
	fmt.Fprintf(w, "  time to resume (ms): p50 %d, p90 %d, p99 %d, max %d (%d samples)\n",
		r.ResumeMS.P50, r.ResumeMS.P90, r.ResumeMS.P99, r.ResumeMS.Max, r.ResumeMS.Count)
}
