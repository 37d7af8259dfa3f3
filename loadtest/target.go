//go:build linux

package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// target is one server endpoint connections are spread over.
type target struct {
	addr netip.AddrPort // resolved once at start: no DNS on the hot path
	host string         // Host header
	uri  string         // request target, path plus query
	url  string         // as the user wrote it, for reports
}

// parseTargets parses --url: one or more comma-separated ws:// URLs, each of
// whose port may be a range ("ws://127.0.0.1:8080-8083/ws" is four targets).
// Host names are resolved once here. wss:// is refused: the client speaks
// plain TCP only.
func parseTargets(s string) ([]target, error) {
	var out []target
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		ts, err := parseTarget(part)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	if len(out) == 0 {
		return nil, errors.New("loadtest: --url names no target")
	}
	return out, nil
}

func parseTarget(s string) ([]target, error) {
	// url.Parse rejects a port range, so cut the host part by hand first.
	rest, ok := strings.CutPrefix(s, "ws://")
	if !ok {
		return nil, fmt.Errorf("loadtest: %q: only ws:// URLs are supported", s)
	}
	hostport, path := rest, "/"
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		hostport, path = rest[:i], rest[i:]
		if path[0] == '?' {
			path = "/" + path
		}
	}
	host, portSpec, err := net.SplitHostPort(hostport)
	if err != nil {
		host, portSpec = hostport, "80"
		if strings.Contains(hostport, ":") && !strings.HasPrefix(hostport, "[") {
			return nil, fmt.Errorf("loadtest: %q: %v", s, err)
		}
		host = strings.Trim(host, "[]")
	}
	lo, hi, err := parsePortRange(portSpec)
	if err != nil {
		return nil, fmt.Errorf("loadtest: %q: %v", s, err)
	}
	if _, err := url.ParseRequestURI(path); err != nil {
		return nil, fmt.Errorf("loadtest: %q: bad path: %v", s, err)
	}
	ip, err := resolve(host)
	if err != nil {
		return nil, fmt.Errorf("loadtest: %q: %v", s, err)
	}
	var out []target
	for p := lo; p <= hi; p++ {
		hp := net.JoinHostPort(host, strconv.Itoa(p))
		out = append(out, target{
			addr: netip.AddrPortFrom(ip, uint16(p)),
			host: hp,
			uri:  path,
			url:  "ws://" + hp + path,
		})
	}
	return out, nil
}

func parsePortRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err = strconv.Atoi(a)
	if err != nil || lo < 1 || lo > 65535 {
		return 0, 0, fmt.Errorf("bad port %q", a)
	}
	hi = lo
	if isRange {
		hi, err = strconv.Atoi(b)
		if err != nil || hi < lo || hi > 65535 {
			return 0, 0, fmt.Errorf("bad port range %q", s)
		}
	}
	return lo, hi, nil
}

func resolve(host string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap(), nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return netip.Addr{}, err
	}
	// Prefer IPv4: loopback tests and source ranges are mostly IPv4.
	for _, ip := range ips {
		if v4 := ip.To4(); v4 != nil {
			return netip.AddrFrom4([4]byte(v4)), nil
		}
	}
	a, _ := netip.AddrFromSlice(ips[0])
	return a, nil
}

// maxSourceIPs bounds --source-ips so a typo ("127.0.0.1-127.255.255.255")
// does not allocate millions of entries.
const maxSourceIPs = 4096

// parseSourceIPs parses --source-ips: comma-separated addresses and inclusive
// ranges ("127.0.0.1-127.0.0.20"). An empty string means "let the kernel
// choose" and returns nil.
func parseSourceIPs(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		a, b, isRange := strings.Cut(part, "-")
		lo, err := netip.ParseAddr(strings.TrimSpace(a))
		if err != nil {
			return nil, fmt.Errorf("loadtest: --source-ips: %v", err)
		}
		hi := lo
		if isRange {
			hi, err = netip.ParseAddr(strings.TrimSpace(b))
			if err != nil {
				return nil, fmt.Errorf("loadtest: --source-ips: %v", err)
			}
			if hi.Is4() != lo.Is4() || hi.Less(lo) {
				return nil, fmt.Errorf("loadtest: --source-ips: %q is not an ascending range", part)
			}
		}
		for ip := lo; ; ip = ip.Next() {
			out = append(out, ip)
			if len(out) > maxSourceIPs {
				return nil, fmt.Errorf("loadtest: --source-ips: more than %d addresses", maxSourceIPs)
			}
			if ip == hi {
				break
			}
		}
	}
	return out, nil
}
