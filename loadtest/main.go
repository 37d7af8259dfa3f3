//go:build linux

// Command loadtest is wsgate's load generator: many WebSocket client
// connections driven by a few epoll event loops, with no goroutine and no
// timer per connection, speaking RFC 6455 through the project's codec in the
// client role (masked frames, a real handshake with a random key).
//
//	go run ./loadtest SCENARIO [flags]
//
// Scenarios are connect, echo, rate, storm and slow; `loadtest -h` lists
// them and the flags. It prints a live progress line on a terminal, a table
// at the end, and with --json and --html a machine-readable report and a
// page with the latency histogram and the run over time.
//
// It must never run unbounded: counts, rates and durations past sane limits
// need --allow-huge, and every phase has a deadline.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// childEnv marks a process started by --procs. The parent passes the child
// its share as flags; the variable only lets a test binary, whose own flags
// are go test's, recognise that it is to act as a loadtest child.
const childEnv = "WSGATE_LOADTEST_CHILD"

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain runs the command and returns its exit status: 0 when the run
// completed (whatever it measured), 1 when it could not run, 2 for usage.
func realMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if cfg.child > 0 {
		return runChild(ctx, cfg, stdout, stderr)
	}
	if cfg.scenario == scResume {
		rep, err := runResume(ctx, cfg, stdout) // resume.go
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if cfg.jsonFile != "" {
			if err := writeJSON(cfg.jsonFile, rep); err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
		}
		return 0
	}
	t0 := time.Now()
	var raws []*raw
	if cfg.procs > 1 {
		raws, err = runParent(ctx, cfg, args, t0, stdout)
	} else {
		var res *raw
		res, err = runOne(ctx, cfg, stdout)
		raws = []*raw{res}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	rep, err := finalize(cfg, raws, t0)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	writeText(stdout, rep)
	if cfg.jsonFile != "" {
		if err := writeJSON(cfg.jsonFile, rep); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	if cfg.htmlFile != "" {
		if err := writeHTML(cfg.htmlFile, rep); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	return 0
}

func writeJSON(path string, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// isTerminal reports whether w is a terminal: the progress line is drawn
// only then.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progress draws the live line at most every 500 ms, and clears it at the
// end; it draws nothing when out is not a terminal.
type progress struct {
	out      io.Writer
	on       bool
	scenario string
	total    int
	last     int64
	lastRecv int64
}

func newProgress(cfg *config, out io.Writer) *progress {
	return &progress{out: out, on: !cfg.quiet && isTerminal(out), scenario: cfg.scenario, total: cfg.conns}
}

func (p *progress) update(phase int32, now int64, c [nCounters]int64) {
	if !p.on || now-p.last < 500e6 {
		return
	}
	rate := float64(c[cReceived]-p.lastRecv) / (float64(now-p.last) / 1e9)
	p.last, p.lastRecv = now, c[cReceived]
	fmt.Fprintf(p.out, "\r\033[K%s  %.0f msg/s", progressLine(p.scenario, phase, now, c, p.total), rate)
}

func (p *progress) done() {
	if p.on {
		fmt.Fprint(p.out, "\r\033[K")
	}
}

func runOne(ctx context.Context, cfg *config, stdout io.Writer) (*raw, error) {
	pr := newProgress(cfg, stdout)
	r := &runner{cfg: cfg, onSample: pr.update}
	res, err := r.run(ctx)
	pr.done()
	return res, err
}
