package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server processes, pinned with taskset, and what /proc says of them.

type server struct {
	cmd  *exec.Cmd
	pid  int
	url  string
	logs *bytes.Buffer
}

// start runs server name pinned to the server cores: its echo app, or
// with broadcast its broadcast app (wsgate: cmd/gateway --app broadcast;
// the others: --broadcast), each sending every message to every client.
func (o *options) start(name string, broadcast bool) (*server, error) {
	o.port++
	addr := fmt.Sprintf("127.0.0.1:%d", o.port)
	args := []string{"-c", o.serverCPU, filepath.Join(o.bin, name), "--listen", addr, "--path", "/ws"}
	if isWsgate(name) {
		args = append(args, "--loops", strconv.Itoa(cpuCount(o.serverCPU)), "--admin", "", "--demo=false")
		if broadcast {
			args = append(args, "--app", "broadcast")
		}
	} else if broadcast {
		args = append(args, "--broadcast")
	}
	if o.compression && name == "gws" {
		args = append(args, "--compression")
	}
	cmd := exec.Command("taskset", args...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(cpuCount(o.serverCPU)))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, pid: cmd.Process.Pid, url: "ws://" + addr + "/ws", logs: &logs}
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if i == 100 {
			s.stop()
			return nil, fmt.Errorf("no /healthz on %s: %v: %s", addr, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // let start-up allocation settle
	return s, nil
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

func rssBytes(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return kbField(b, "VmRSS:")
}

// slabBytes is the kernel's slab memory in use: the sum of active objects
// times object size over /proc/slabinfo, leaving out the TIME_WAIT and
// SYN-queue caches, which earlier runs fill and which drain on their own
// while a measurement runs. Without slabinfo it falls back to meminfo's
// Slab line.
func slabBytes() (float64, error) {
	b, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		b, err = os.ReadFile("/proc/meminfo")
		if err != nil {
			return 0, err
		}
		return kbField(b, "Slab:")
	}
	var sum float64
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || strings.HasPrefix(f[0], "tw_sock") || strings.HasPrefix(f[0], "request_sock") {
			continue
		}
		active, err1 := strconv.ParseFloat(f[1], 64)
		size, err2 := strconv.ParseFloat(f[3], 64)
		if err1 == nil && err2 == nil {
			sum += active * size
		}
	}
	return sum, nil
}

func kbField(b []byte, key string) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == key {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no " + key)
}

// clkTck is USER_HZ, 100 on every Linux that matters.
const clkTck = 100

// cpuSec is the process's user plus system CPU time, all threads.
func cpuSec(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which may hold spaces: ") S ppid ...".
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clkTck, nil
}

// cpuSampler reads a process's CPU time every 20 ms, so the time spent in
// any wall-clock window can be read off afterwards.
type cpuSampler struct {
	mu   sync.Mutex
	at   []time.Time
	cpu  []float64
	stop chan struct{}
	done chan struct{}
}

func sampleCPU(pid int) *cpuSampler {
	s := &cpuSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if c, err := cpuSec(pid); err == nil {
				s.mu.Lock()
				s.at, s.cpu = append(s.at, time.Now()), append(s.cpu, c)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *cpuSampler) end() {
	close(s.stop)
	<-s.done
}

// at returns the CPU seconds used by time t, interpolated between samples.
func (s *cpuSampler) value(t time.Time) float64 {
	for i := 1; i < len(s.at); i++ {
		if !s.at[i].Before(t) {
			span := s.at[i].Sub(s.at[i-1]).Seconds()
			if span <= 0 {
				return s.cpu[i]
			}
			f := t.Sub(s.at[i-1]).Seconds() / span
			return s.cpu[i-1] + f*(s.cpu[i]-s.cpu[i-1])
		}
	}
	return s.cpu[len(s.cpu)-1]
}

func cpuCount(list string) int {
	n := 0
	for _, part := range strings.Split(list, ",") {
		a, b, isRange := strings.Cut(part, "-")
		lo, err := strconv.Atoi(a)
		if err != nil {
			continue
		}
		hi := lo
		if isRange {
			hi, _ = strconv.Atoi(b)
		}
		n += max(0, hi-lo+1)
	}
	return max(n, 1)
}
