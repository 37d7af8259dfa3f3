package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// The admin API trusts no browser. Without a token it is reachable by
// anything that can reach its address, which on loopback is every page
// open in the operator's browser: a form or fetch with a "simple" body
// (text/plain) is sent without a CORS preflight, so a page could POST
// /v1/drain; and a page that rebinds its own DNS name to 127.0.0.1 is
// same-origin with the API and could read GET /v1/connections. Two
// checks stop both, with a 403 and a JSON error:
//
//   - Host must name the admin server (hostPolicy): a rebound page sends
//     its own name, which is not one of them.
//   - A request a browser marks as coming from another site
//     (Sec-Fetch-Site: cross-site or same-site, any method) is refused, and
//     so is a state-changing one (anything but GET, HEAD, OPTIONS) with an
//     Origin header: browsers add it to every cross-origin POST, PUT and
//     DELETE, and curl, Prometheus and backends do not send it.

// untrusted returns why r is refused, or "".
func (a *admin) untrusted(r *http.Request) string {
	if !a.hosts.allow(r.Host) {
		return "host " + quoteHost(r.Host) + " is not this admin server (see admin_hosts)"
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return "cross-site requests are refused"
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if _, ok := r.Header["Origin"]; ok {
			return "requests from a browser page (Origin) may not change state"
		}
	}
	return ""
}

// quoteHost returns a short, printable form of a Host value for an error.
func quoteHost(h string) string {
	if len(h) > 64 {
		h = h[:64] + "..."
	}
	return "\"" + strings.ToValidUTF8(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return '?'
		}
		return r
	}, h), "?") + "\""
}

// hostPolicy says which Host values name the admin server. The port is
// not compared: a DNS rebinding attack is told apart by its name alone,
// and port forwards (ssh -L, kubectl port-forward) change the port.
type hostPolicy struct {
	loopback bool              // localhost and loopback addresses
	anyIP    bool              // any IP address (a listener on all interfaces)
	ip       netip.Addr        // the listener's own address
	names    map[string]string // lower-case host → required port, "" for any
}

// newHostPolicy builds the policy of an admin server listening on addr
// (host:port), with extra names from Config.AdminHosts.
func newHostPolicy(addr string, extra []string) hostPolicy {
	p := hostPolicy{names: map[string]string{}}
	host, _, _ := net.SplitHostPort(addr)
	switch ip, err := netip.ParseAddr(host); {
	case host == "" || err == nil && ip.IsUnspecified():
		p.anyIP, p.loopback = true, true
	case host == "localhost" || err == nil && ip.IsLoopback():
		p.loopback = true
	case err == nil:
		p.ip = ip.Unmap()
	default:
		p.names[strings.ToLower(host)] = "" // the configured name itself
	}
	for _, h := range extra {
		name, port, err := net.SplitHostPort(h)
		if err != nil {
			name, port = h, ""
		}
		p.names[strings.ToLower(strings.Trim(name, "[]"))] = port
	}
	return p
}

// allow reports whether a request's Host names the admin server.
func (p *hostPolicy) allow(hostport string) bool {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, ""
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" {
		return false
	}
	if want, ok := p.names[host]; ok && (want == "" || want == port) {
		return true
	}
	if host == "localhost" {
		return p.loopback
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	return p.anyIP || p.loopback && ip.IsLoopback() || p.ip.IsValid() && ip.WithZone("") == p.ip.WithZone("")
}
