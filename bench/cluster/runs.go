package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	gorilla "github.com/gorilla/websocket"
)

// latency: one gorilla client on gateway B, user lat. Each push goes
// through an admin API and the time is from the POST to the client's
// read: through B's own API (local) or A's (through NATS), to the user
// and to the connection's ID, interleaved so that noise hits all alike.
func latency(pushes, size int) {
	nats, _ := startNATS()
	a, b := startGateway(nats, "a"), startGateway(nats, "b")
	c, _, err := gorilla.DefaultDialer.Dial("ws://"+b.addr+"/ws?user=lat", nil)
	if err != nil {
		fatal(err)
	}
	defer c.Close()
	settle([]gateway{a, b}, 2, 1)
	var page struct {
		Connections []struct {
			ID string `json:"id"`
		} `json:"connections"`
	}
	getJSON("http://"+b.admin+"/v1/connections?scope=local", &page)
	id := page.Connections[0].ID
	paths := []struct{ name, url string }{
		{"user, local", "http://" + b.admin + "/v1/users/lat/messages"},
		{"user, through NATS", "http://" + a.admin + "/v1/users/lat/messages"},
		{"connection, local", "http://" + b.admin + "/v1/connections/" + id + "/messages"},
		{"connection, through NATS", "http://" + a.admin + "/v1/connections/" + id + "/messages"},
	}
	payload := make([]byte, size)
	got := make([][]time.Duration, len(paths))
	for i := -100; i < pushes; i++ { // 100 of warm-up
		for p, path := range paths {
			done := make(chan struct{})
			t0 := time.Now()
			go func() { post(path.url, payload); close(done) }()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, msg, err := c.ReadMessage(); err != nil || len(msg) != size {
				fatal(fmt.Errorf("read: %d bytes, %v", len(msg), err))
			}
			d := time.Since(t0)
			<-done
			if i >= 0 {
				got[p] = append(got[p], d)
			}
		}
	}
	fmt.Printf("push of %d bytes, POST to the client's read, %d each, interleaved:\n", size, pushes)
	for p, path := range paths {
		fmt.Printf("  %-26s p50 %7.0f µs   p99 %7.0f µs\n", path.name, us(percentile(got[p], .5)), us(percentile(got[p], .99)))
	}
	for _, k := range []int{0, 2} {
		fmt.Printf("  added by NATS (%s): p50 %+.0f µs, p99 %+.0f µs\n", strings.Split(paths[k].name, ",")[0],
			us(percentile(got[k+1], .5))-us(percentile(got[k], .5)), us(percentile(got[k+1], .99))-us(percentile(got[k], .99)))
	}
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }

// holdConns runs loadtest connect against urls and returns once the ramp
// is over; the connections stay until the process is killed.
func holdConns(urls []string, conns, clientProcs int) *exec.Cmd {
	ready := filepath.Join(workDir, "ready"+strconv.Itoa(len(procs)))
	args := []string{"connect", "--url", strings.Join(urls, ","), "--conns", strconv.Itoa(conns),
		"--procs", strconv.Itoa(clientProcs), "--ramp", "2000", "--max-pending", "500", "--duration", "1h",
		"--ready-file", ready, "--quiet", "--handshake-timeout", "30s"}
	if conns > 20000 {
		// loadtest counts ports per source address and target: one
		// 127.0.0.x per 20,000 connections keeps it in the port range.
		args = append(args, "--source-ips", fmt.Sprintf("127.0.0.1-127.0.0.%d", min(conns/20000+1, 64)))
	}
	lt := run(filepath.Join(*binDir, "loadtest"), args...)
	exited := make(chan error, 1)
	go func() { exited <- lt.Wait() }()
	// The ramp asks 2,000/s; a machine busy with the gateways and the
	// clients gets less: allow 200/s (and at least 5 minutes).
	deadline := time.Now().Add(max(5*time.Minute, time.Duration(conns/200)*time.Second))
	for {
		if _, err := os.Stat(ready); err == nil {
			return lt
		}
		select {
		case err := <-exited:
			fatal(fmt.Errorf("loadtest exited before its ramp was over: %v", err))
		default:
		}
		if time.Now().After(deadline) {
			fatal(fmt.Errorf("loadtest did not finish its ramp of %d connections", conns))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_, _ = cmd.Process.Wait()
}

type natsConn struct {
	Name     string `json:"name"`
	InMsgs   int64  `json:"in_msgs"`
	OutMsgs  int64  `json:"out_msgs"`
	InBytes  int64  `json:"in_bytes"`
	OutBytes int64  `json:"out_bytes"`
}

func connz(mon string) map[string]natsConn {
	var v struct {
		Connections []natsConn `json:"connections"`
	}
	getJSON("http://"+mon+"/connz", &v)
	out := map[string]natsConn{}
	for _, c := range v.Connections {
		out[c.Name] = c
	}
	return out
}

func deliveries(gws []gateway) int64 {
	var n int64
	for _, g := range gws {
		var st map[string]any
		getJSON("http://"+g.admin+"/v1/stats", &st)
		f, _ := st["deliveries"].(float64)
		n += int64(f)
	}
	return n
}

// fanout: subs connections spread evenly over gateways processes, all
// subscribed to one topic; publishes through the first gateway's admin
// API, one after the other. Then the same with one gateway and no NATS.
func fanout(gateways, subs, publishes, size, clientProcs int) {
	nats, mon := startNATS()
	var gws []gateway
	var urls []string
	for i := range gateways {
		g := startGateway(nats, "f"+strconv.Itoa(i), "--cluster-heartbeat", "1m")
		gws = append(gws, g)
		urls = append(urls, "ws://"+g.addr+"/ws?topic=fan")
	}
	lt := holdConns(urls, subs, clientProcs)
	settle(gws, gateways, int64(subs))
	before := connz(mon)
	fmt.Printf("fan-out of %d bytes to %d subscribers over %d gateways (%d loop(s) each), %d publishes through gateway 0:\n",
		size, subs, gateways, *loops, publishes)
	measureFanout(gws, subs, publishes, size)
	after := connz(mon)
	var msgs, payloadBytes, in int64
	for name, a := range after {
		if !strings.HasPrefix(name, "wsgate ") {
			continue
		}
		b := before[name]
		msgs += a.OutMsgs - b.OutMsgs
		payloadBytes += a.OutBytes - b.OutBytes
		in += a.InMsgs - b.InMsgs
	}
	fmt.Printf("  NATS: %.1f messages into NATS and %.1f out of it per publish (the topic message, a barrier, counts and acks);\n",
		float64(in)/float64(publishes), float64(msgs)/float64(publishes))
	fmt.Printf("        %.2f payloads' worth of bytes delivered by NATS per publish (%d nodes other than the publisher)\n",
		float64(payloadBytes)/float64(publishes*size), gateways-1)
	stop(lt)
	for _, g := range gws {
		stop(g.cmd)
	}
	// One process holds at most ~19,900 descriptors: the baseline is one
	// gateway's share, on one gateway without NATS.
	share := subs / gateways
	single := startGateway("", "")
	lt = holdConns([]string{"ws://" + single.addr + "/ws?topic=fan"}, share, clientProcs)
	for i := 0; i < 100 && deliveriesWait(single, share); i++ {
	}
	fmt.Printf("one gateway's share (%d subscribers) on one gateway without NATS:\n", share)
	measureFanout([]gateway{single}, share, publishes, size)
	stop(lt)
	stop(single.cmd)
}

// deliveriesWait waits until the single gateway has every subscriber.
func deliveriesWait(g gateway, subs int) bool {
	var st map[string]any
	getJSON("http://"+g.admin+"/v1/stats", &st)
	f, _ := st["ws_conns"].(float64)
	if int(f) >= subs {
		return false
	}
	time.Sleep(100 * time.Millisecond)
	return true
}

func measureFanout(gws []gateway, subs, publishes, size int) {
	payload := make([]byte, size)
	var cpu0 int64
	for _, g := range gws {
		cpu0 += cpuTicks(g.cmd.Process.Pid)
	}
	d0 := deliveries(gws)
	t0 := time.Now()
	var want int64
	for range publishes {
		v := post("http://"+gws[0].admin+"/v1/topics/fan/messages", payload)
		got, _ := v["subscribers"].(float64)
		want += int64(got)
	}
	if want != int64(subs*publishes) {
		fmt.Printf("  (%d of the %d subscribers connected)\n", want/int64(publishes), subs)
	}
	subs = int(want) / publishes
	want += d0
	for i := 0; deliveries(gws) < want; i++ {
		if i == 6000 {
			fatal(fmt.Errorf("deliveries stuck at %d of %d", deliveries(gws)-d0, want-d0))
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(t0)
	var cpu int64
	for _, g := range gws {
		cpu += cpuTicks(g.cmd.Process.Pid)
	}
	n := float64(subs * publishes)
	// Clock ticks are 10 ms (USER_HZ 100).
	fmt.Printf("  %.0f deliveries/s (%d in %v), gateway CPU %.2f µs per delivery\n",
		n/elapsed.Seconds(), int64(n), elapsed.Round(time.Millisecond), float64(cpu-cpu0)*1e4/n)
}

// memory: per connection, a gateway holding conns idle connections, with
// and without a cluster, with no user and with a user of its own per
// connection (a NATS subscription each in a cluster).
//
// The gateways run with GOGC=5, so that the heap in use after the ramp is
// close to what is live: an idle gateway allocates nothing, so no
// collection would come to clear the ramp's garbage.
func memory(conns, clientProcs int) {
	gatewayEnv = []string{"GOGC=5"}
	nats, _ := startNATS()
	for _, tc := range []struct {
		name, nats, user string
	}{
		{"single node, no user", "", "none"},
		{"cluster, no user", nats, "none"},
		{"single node, a user each", "", "unique"},
		{"cluster, a user each", nats, "unique"},
	} {
		g := startGateway(tc.nats, "m")
		time.Sleep(time.Second)
		rss0, heap0 := rssKB(g.cmd.Process.Pid), heapInuse(g)
		lt := holdConns([]string{"ws://" + g.addr + "/ws?user=" + tc.user}, conns, clientProcs)
		if tc.nats != "" {
			settle([]gateway{g}, 1, int64(conns))
		}
		time.Sleep(2 * time.Second)
		rss1, heap1 := rssKB(g.cmd.Process.Pid), heapInuse(g)
		fmt.Printf("%-26s RSS %5.0f B/conn   Go heap in use %5.0f B/conn   (%d connections)\n",
			tc.name, float64(rss1-rss0)*1024/float64(conns), float64(heap1-heap0)/float64(conns), conns)
		stop(lt)
		stop(g.cmd)
	}
}
