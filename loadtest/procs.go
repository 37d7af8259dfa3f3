//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"
)

// The --procs protocol: a child writes lines to its stdout, "progress
// {json}" every sample and "result {json}" once at the end; its stderr
// goes to the parent's stderr. A child whose ramp is over holds its
// connections (phaseHold) until the parent writes "go" to its stdin, which
// the parent does once every child has reported the end of its ramp: the
// measured phases start together, and a child that ramped quickly does not
// close its connections while another is still opening. The parent merges
// the results.

type childProgress struct {
	Phase int32            `json:"phase"`
	Now   int64            `json:"now"`
	C     [nCounters]int64 `json:"c"`
}

func runChild(ctx context.Context, cfg *config, stdout, stderr io.Writer) int {
	// A child's work is its loops, one goroutine each: more Ps than loops
	// only add idle threads when a hundred processes share a few cores.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(min(cfg.loops, runtime.NumCPU()))
	}
	w := bufio.NewWriter(stdout)
	enc := json.NewEncoder(w)
	var lastPhase int32 = -1
	var lastSec int64 = -1
	release := make(chan struct{})
	r := &runner{cfg: cfg, release: release}
	r.onSample = func(ph int32, now int64, c [nCounters]int64) {
		// Every phase change and one sample a second is enough for the
		// parent's progress line and --ready-file, however often the
		// runner samples.
		sec := now / int64(time.Second)
		if ph == lastPhase && sec == lastSec {
			return
		}
		lastPhase, lastSec = ph, sec
		w.WriteString("progress ")
		_ = enc.Encode(childProgress{Phase: ph, Now: now, C: c})
		w.Flush()
	}
	// A child is one of many: it stops when its parent goes away.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for range time.Tick(time.Second) {
			if os.Getppid() == 1 {
				cancel()
				return
			}
		}
	}()
	go func() {
		// "go" releases the hold; the end of stdin without it means the
		// parent is gone.
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if sc.Text() == "go" {
				close(release)
				return
			}
		}
		cancel()
	}()
	res, err := r.run(ctx)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	w.WriteString("result ")
	_ = enc.Encode(res)
	w.Flush()
	return 0
}

// runParent starts cfg.procs children of this executable, each with its
// share of connections and rates, and collects their results.
func runParent(ctx context.Context, cfg *config, args []string, t0 time.Time, stdout io.Writer) ([]*raw, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	pr := newProgress(cfg, stdout)
	type child struct {
		cmd  *exec.Cmd
		in   io.WriteCloser
		out  io.ReadCloser
		last childProgress
		res  *raw
		err  error
	}
	children := make([]*child, cfg.procs)
	var mu sync.Mutex
	var wg sync.WaitGroup
	readyDone := false
	// barrier sums the children's latest counters (for the live line and
	// the ready file) and, once every child's ramp is over, starts the
	// measured phase everywhere at once. Called with mu held.
	barrier := func() [nCounters]int64 {
		var sum [nCounters]int64
		minPhase := phaseStop
		for _, o := range children {
			if o == nil {
				minPhase = phaseInit
				continue
			}
			for j := range sum {
				sum[j] += o.last.C[j]
			}
			minPhase = min(minPhase, o.last.Phase)
		}
		if minPhase >= phaseHold && !readyDone {
			readyDone = true
			for _, o := range children {
				_, _ = io.WriteString(o.in, "go\n")
			}
			if cfg.readyFile != "" {
				writeReady(cfg.readyFile, sum[cEstablished])
			}
		}
		return sum
	}
	for i := range children {
		cmd := exec.Command(exe, cfg.childArgs(args, i+1, cfg.procs, t0.UnixNano())...)
		cmd.Env = append(os.Environ(), childEnv+"=1")
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			for _, c := range children[:i] {
				_ = c.cmd.Process.Kill()
				_ = c.cmd.Wait()
			}
			return nil, fmt.Errorf("loadtest: starting child %d: %v", i+1, err)
		}
		c := &child{cmd: cmd, in: in, out: out}
		mu.Lock() // readers of earlier children sum over the slice
		children[i] = c
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 64<<10), 64<<20)
			for sc.Scan() {
				kind, body, _ := strings.Cut(sc.Text(), " ")
				mu.Lock()
				switch kind {
				case "progress":
					var p childProgress
					if json.Unmarshal([]byte(body), &p) == nil {
						c.last = p
					}
					sum := barrier()
					pr.update(c.last.Phase, int64(time.Since(t0)), sum)
				case "result":
					c.res = &raw{}
					if err := json.Unmarshal([]byte(body), c.res); err != nil {
						c.err = err
						c.res = nil
					}
				}
				mu.Unlock()
			}
			if err := sc.Err(); err != nil {
				// A line over the limit stops the scanner, not the child.
				// The child is lost to the run: the end of its stdin stops
				// it (it never hears "go"), it holds nobody else up, and
				// its output is read to the end, or it blocks on a full
				// pipe and Wait never returns.
				mu.Lock()
				c.err = fmt.Errorf("reading its output: %v", err)
				_ = c.in.Close()
				c.last.Phase = phaseStop
				barrier()
				mu.Unlock()
				_, _ = io.Copy(io.Discard, out)
			}
			_ = c.in.Close()
			err := c.cmd.Wait()
			mu.Lock()
			// A child that is gone holds nobody up.
			c.last.Phase = phaseStop
			barrier()
			if c.res == nil && c.err == nil {
				c.err = fmt.Errorf("exited without a result (%v)", err)
			}
			mu.Unlock()
		}()
	}
	stop := context.AfterFunc(ctx, func() {
		for _, c := range children {
			_ = c.cmd.Process.Signal(os.Interrupt)
		}
	})
	defer stop()
	wg.Wait()
	pr.done()
	var raws []*raw
	var errs []error
	for i, c := range children {
		if c.err != nil {
			errs = append(errs, fmt.Errorf("loadtest: child %d: %v", i+1, c.err))
			continue
		}
		raws = append(raws, c.res)
	}
	if len(raws) == 0 {
		return nil, errors.Join(errs...)
	}
	if len(errs) > 0 {
		// A report from the children that finished is still worth having;
		// say what is missing.
		fmt.Fprintln(os.Stderr, errors.Join(errs...))
	}
	return raws, nil
}
