package loop

import "bytes"

// Route is a plain HTTP route on the WebSocket port, handed to the engine
// by package gateway (/healthz, /readyz, the demo page): a GET of Path that
// is not an upgrade is answered with what Respond returns, and the
// connection closes. Anything else outside the WebSocket endpoint gets 404.
type Route struct {
	Path string
	// Respond returns the whole HTTP response (codec.AppendHTTPResponse).
	// It runs on an event loop for each request: it must not block, and
	// should hand back a response built beforehand, which the loop does
	// not keep or change.
	Respond func() []byte
}

// routeTable is the server's plain routes, read-only once built.
type routeTable struct {
	paths    [][]byte
	handlers []func() []byte
}

func newRouteTable(routes []Route) routeTable {
	var t routeTable
	for _, r := range routes {
		t.paths = append(t.paths, []byte(r.Path))
		t.handlers = append(t.handlers, r.Respond)
	}
	return t
}

// find returns the response of path's route, or nil. A handful of routes
// are compared in turn: no map, no allocation.
func (t *routeTable) find(path []byte) []byte {
	for i, p := range t.paths {
		if bytes.Equal(p, path) {
			return t.handlers[i]()
		}
	}
	return nil
}
