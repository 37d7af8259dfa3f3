//go:build linux

package main

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseSourceIPs(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
		err      string
	}{
		{name: "empty", in: "", want: nil},
		{name: "one", in: "127.0.0.2", want: []string{"127.0.0.2"}},
		{name: "range", in: "127.0.0.1-127.0.0.3", want: []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}},
		{name: "range over an octet", in: "127.0.0.254-127.0.1.1", want: []string{"127.0.0.254", "127.0.0.255", "127.0.1.0", "127.0.1.1"}},
		{name: "list and range", in: "127.0.0.9, 127.0.0.1-127.0.0.2", want: []string{"127.0.0.9", "127.0.0.1", "127.0.0.2"}},
		{name: "single-address range", in: "127.0.0.5-127.0.0.5", want: []string{"127.0.0.5"}},
		{name: "ipv6", in: "::1", want: []string{"::1"}},
		{name: "descending", in: "127.0.0.3-127.0.0.1", err: "ascending"},
		{name: "mixed families", in: "127.0.0.1-::1", err: "ascending"},
		{name: "garbage", in: "127.0.0", err: "source-ips"},
		{name: "too many", in: "127.0.0.0-127.0.255.255", err: "more than 4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSourceIPs(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i, w := range tc.want {
				if got[i] != netip.MustParseAddr(w) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestParseTargets(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string // addr|host|uri
		err      string
	}{
		{name: "default", in: "ws://127.0.0.1:8080/ws", want: []string{"127.0.0.1:8080|127.0.0.1:8080|/ws"}},
		{name: "no path", in: "ws://127.0.0.1:9000", want: []string{"127.0.0.1:9000|127.0.0.1:9000|/"}},
		{name: "query", in: "ws://127.0.0.1:9000/ws?room=1", want: []string{"127.0.0.1:9000|127.0.0.1:9000|/ws?room=1"}},
		{name: "no port", in: "ws://127.0.0.1/x", want: []string{"127.0.0.1:80|127.0.0.1:80|/x"}},
		{name: "port range", in: "ws://127.0.0.1:8080-8082/ws", want: []string{
			"127.0.0.1:8080|127.0.0.1:8080|/ws", "127.0.0.1:8081|127.0.0.1:8081|/ws", "127.0.0.1:8082|127.0.0.1:8082|/ws"}},
		{name: "list", in: "ws://127.0.0.1:1/a, ws://127.0.0.2:2/b", want: []string{
			"127.0.0.1:1|127.0.0.1:1|/a", "127.0.0.2:2|127.0.0.2:2|/b"}},
		{name: "ipv6", in: "ws://[::1]:8080/ws", want: []string{"[::1]:8080|[::1]:8080|/ws"}},
		{name: "localhost", in: "ws://localhost:8080/ws", want: []string{"127.0.0.1:8080|localhost:8080|/ws"}},
		{name: "wss refused", in: "wss://127.0.0.1/ws", err: "only ws://"},
		{name: "http refused", in: "http://127.0.0.1/ws", err: "only ws://"},
		{name: "backwards range", in: "ws://127.0.0.1:9-8/ws", err: "bad port range"},
		{name: "port zero", in: "ws://127.0.0.1:0/ws", err: "bad port"},
		{name: "empty", in: " , ", err: "no target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTargets(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, g := range got {
				s = append(s, g.addr.String()+"|"+g.host+"|"+g.uri)
			}
			if strings.Join(s, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("got %v, want %v", s, tc.want)
			}
		})
	}
}

func TestBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{name: "defaults", args: []string{"echo"}},
		{name: "unknown scenario", args: []string{"flood"}, err: "unknown scenario"},
		{name: "huge conns", args: []string{"connect", "--conns", "1000000", "--procs", "64"}, err: "--allow-huge"},
		{name: "huge conns allowed", args: []string{"connect", "--conns", "1000000", "--procs", "64", "--allow-huge",
			"--source-ips", "127.0.0.1-127.0.0.40"}},
		{name: "too many per process", args: []string{"connect", "--conns", "30000"}, err: "--procs to at least 2"},
		{name: "ports exhausted", args: []string{"connect", "--conns", "60000", "--procs", "4"}, err: "ephemeral port range"},
		{name: "huge duration", args: []string{"echo", "--duration", "2h"}, err: "--allow-huge"},
		{name: "tiny payload", args: []string{"echo", "--size", "4"}, err: "--size must be at least 8"},
		{name: "remote with --url", args: []string{"echo", "--url", "ws://192.0.2.1:8080/ws"}},
		{name: "source must reach loopback", args: []string{"echo", "--source-ips", "192.0.2.1"}, err: "cannot reach loopback"},
		{name: "slow share", args: []string{"slow", "--slow-share", "1"}, err: "--slow-share"},
		{name: "storm mode", args: []string{"storm", "--storm", "maybe"}, err: "--storm must be"},
		{name: "stray argument", args: []string{"echo", "extra"}, err: "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseArgs(tc.args, &strings.Builder{})
			if tc.err == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want one with %q", err, tc.err)
			}
		})
	}
}

func TestChildArgs(t *testing.T) {
	orig := []string{"rate", "--conns", "10", "--rate", "1001", "--ramp", "100", "--procs", "3",
		"--source-ips", "127.0.0.1-127.0.0.2", "--json", "x.json", "--size", "100"}
	cfg, err := parseArgs(orig, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	var conns, rate int
	for i := 1; i <= 3; i++ {
		child, err := parseArgs(cfg.childArgs(orig, i, 3, 42), &strings.Builder{})
		if err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
		if child.size != 100 || len(child.sourceIPs) != 2 || child.jsonFile != "" || child.procs != 1 || child.connTotal != 10 {
			t.Errorf("child %d: size %d, sources %d, json %q, procs %d, total %d", i, child.size, len(child.sourceIPs), child.jsonFile, child.procs, child.connTotal)
		}
		if child.connBase != conns {
			t.Errorf("child %d: conn base %d, want %d", i, child.connBase, conns)
		}
		conns += child.conns
		rate += child.rate
	}
	if conns != 10 || rate != 1001 {
		t.Errorf("children hold %d connections at %d msg/s, want 10 at 1001", conns, rate)
	}
}

func TestIsSlowSpreadsTheShare(t *testing.T) {
	for _, share := range []float64{0, 0.1, 0.25, 0.5, 0.99} {
		n := 0
		for g := range 1000 {
			if isSlow(g, share) {
				n++
			}
		}
		if want := int(1000 * share); n != want {
			t.Errorf("share %v: %d of 1000 slow, want %d", share, n, want)
		}
	}
}
