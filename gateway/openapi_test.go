package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
)

// The admin API against its OpenAPI 3.1 contract (openapi.yaml, served at
// GET /v1/openapi.yaml, copied to docs/api/openapi.yaml): every route of
// the real admin server, with real WebSocket clients connected, each
// request and each answer checked by kin-openapi's validator, and every
// status the spec documents reached at least once (but 500 and 503, which
// need a broken loop or a stopped server).

const specFile = "openapi.yaml"

// loadSpec loads and validates the spec, with server the admin address
// the router should match.
func loadSpec(t *testing.T, server string) (*openapi3.T, routers.Router) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(specFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", specFile, err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	doc.Servers = openapi3.Servers{{URL: server}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, router
}

// specRoutes lists the spec's operations as "METHOD /path".
func specRoutes(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	sort.Strings(out)
	return out
}

// The routes the mux registers (gateway's one table) are the spec's.
func TestOpenAPIRoutesMatchCode(t *testing.T) {
	doc, _ := loadSpec(t, "http://127.0.0.1:9090")
	code := gateway.AdminRoutes()
	sort.Strings(code)
	spec := specRoutes(doc)
	for _, r := range code {
		if !slices.Contains(spec, r) {
			t.Errorf("route %q is registered in gateway/admin.go but missing from %s", r, specFile)
		}
	}
	for _, r := range spec {
		if !slices.Contains(code, r) {
			t.Errorf("%s documents %q, which gateway/admin.go does not register", specFile, r)
		}
	}
}

// docs/api/openapi.yaml is the same file, byte for byte.
func TestOpenAPICopyInDocs(t *testing.T) {
	want, err := os.ReadFile(specFile)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../docs/api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("docs/api/openapi.yaml differs from gateway/openapi.yaml: cp gateway/openapi.yaml docs/api/openapi.yaml")
	}
}

// specClient sends admin requests and checks both directions against
// the spec, recording which documented statuses were seen.
type specClient struct {
	t      *testing.T
	base   string
	token  string
	router routers.Router

	mu   sync.Mutex
	seen map[string]map[int]bool // "METHOD /template" → statuses
}

// call is one request. token "" sends the right token, "-" none.
type call struct {
	method, path, ctype string
	body                []byte
	token               string
	header              map[string]string // more request headers
	want                int
	// specRejects: the spec's own constraints refuse the request (a
	// parameter out of range): the validator must say so.
	specRejects bool
}

// do sends k and validates both directions. It reports failures with
// t.Error, not t.Fatal, so that it may run on other goroutines.
func (c *specClient) do(k call) (int, []byte) {
	t := c.t
	t.Helper()
	req, err := http.NewRequest(k.method, c.base+k.path, bytes.NewReader(k.body))
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	if k.ctype != "" {
		req.Header.Set("Content-Type", k.ctype)
	}
	for name, v := range k.header {
		req.Header.Set(name, v)
	}
	switch k.token {
	case "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	case "-":
	default:
		req.Header.Set("Authorization", "Bearer "+k.token)
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		t.Errorf("%s %s: no operation in the spec: %v", k.method, k.path, err)
		return 0, nil
	}
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: c.authenticate},
	}
	// The validator reads the body: give the request a fresh one after.
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	req.Body = io.NopCloser(bytes.NewReader(k.body))
	switch {
	case reqErr != nil && !k.specRejects:
		t.Errorf("%s %s: request does not match the spec: %v", k.method, k.path, reqErr)
	case reqErr == nil && k.specRejects:
		t.Errorf("%s %s: the spec accepts a request the test expects it to refuse", k.method, k.path)
	}

	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", k.method, k.path, err)
		return 0, nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Errorf("%s %s: reading: %v", k.method, k.path, err)
		return 0, nil
	}
	if k.want != 0 && resp.StatusCode != k.want {
		t.Errorf("%s %s: status %d, want %d: %.200s", k.method, k.path, resp.StatusCode, k.want, body)
	}
	if err := validateResponse(in, resp.StatusCode, resp.Header, body); err != nil {
		t.Errorf("%s %s: %d answer does not match the spec: %v\nbody: %.300s", k.method, k.path, resp.StatusCode, err, body)
	}
	c.mu.Lock()
	key := route.Method + " " + route.Path
	if c.seen[key] == nil {
		c.seen[key] = map[int]bool{}
	}
	c.seen[key][resp.StatusCode] = true
	c.mu.Unlock()
	return resp.StatusCode, body
}

func validateResponse(in *openapi3filter.RequestValidationInput, status int, h http.Header, body []byte) error {
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 h,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		// An answer with a status the spec does not list is an error.
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	})
}

var errNoToken = errors.New("no bearer token")

// authenticate accepts what the gateway accepts: Bearer and the token.
func (c *specClient) authenticate(_ context.Context, ai *openapi3filter.AuthenticationInput) error {
	if ai.SecuritySchemeName != "bearer" {
		return errors.New("unknown scheme " + ai.SecuritySchemeName)
	}
	if ai.RequestValidationInput.Request.Header.Get("Authorization") != "Bearer "+c.token {
		return errNoToken
	}
	return nil
}

// Every route of the real admin API, against the spec.
func TestOpenAPIContract(t *testing.T) {
	const token = "s3cret"
	srv, _ := adminServer(t, gateway.Config{
		AdminToken:     token,
		MaxMessageSize: 64 << 10,
		MaxOutbound:    64 << 10,
	})
	base := "http://" + srv.AdminAddr().String()
	doc, router := loadSpec(t, base)
	c := &specClient{t: t, base: base, token: token, router: router, seen: map[string]map[int]bool{}}

	ann, annID := dialUser(t, srv, "ann")
	bob, bobID := dialUser(t, srv, "bob")
	_, slowID := dialUser(t, srv, "sam") // never reads after its id
	waitFor(t, func() bool { return len(srv.UserConns("ann", nil)) == 1 && len(srv.UserConns("sam", nil)) == 1 })

	// Every route answers 401 without the token, and with a wrong one.
	for _, r := range specRoutes(doc) {
		method, path, _ := strings.Cut(r, " ")
		path = strings.NewReplacer("{id}", annID, "{topic}", "news", "{user}", "ann", "{name}", "heap").Replace(path)
		c.do(call{method: method, path: path, token: "-", want: 401})
		c.do(call{method: method, path: path, token: "wrong", want: 401})
		// A browser page is refused before the token matters
		// (admin_trust.go): for every method on Sec-Fetch-Site, and for
		// state-changing ones on Origin too.
		c.do(call{method: method, path: path, header: map[string]string{"Sec-Fetch-Site": "cross-site"}, want: 403})
		if method != "GET" {
			c.do(call{method: method, path: path, header: map[string]string{"Origin": "http://evil.example"}, want: 403})
		}
	}

	// Push.
	conn := "/v1/connections/" + annID
	c.do(call{method: "POST", path: conn + "/messages", ctype: "text/plain", body: []byte("hi"), want: 202})
	if _, msg := readMsg(t, ann); msg != "hi" {
		t.Fatalf("ann got %q", msg)
	}
	c.do(call{method: "POST", path: conn + "/messages", ctype: "application/octet-stream", body: []byte{0, 1}, want: 202})
	readMsg(t, ann)
	c.do(call{method: "POST", path: conn + "/messages", ctype: "text/plain", body: []byte{0xff, 0xfe}, want: 400})
	c.do(call{method: "POST", path: conn + "/messages", ctype: "application/octet-stream", body: make([]byte, 64<<10+1), want: 413})
	c.do(call{method: "POST", path: "/v1/connections/18446744073709551615/messages", ctype: "text/plain", body: []byte("x"), want: 404})
	// sam reads nothing: its outbound queue fills and a push gets 429.
	big := bytes.Repeat([]byte("x"), 60<<10)
	status := 202
	for i := 0; i < 2000 && status == 202; i++ {
		status, _ = c.do(call{method: "POST", path: "/v1/connections/" + slowID + "/messages", ctype: "application/octet-stream", body: big})
	}
	if status != 429 {
		t.Fatalf("pushing to a client that does not read answered %d, want 429 at some point", status)
	}

	c.do(call{method: "POST", path: "/v1/users/ann/messages", ctype: "application/json", body: []byte(`{"n":1}`), want: 202})
	readMsg(t, ann)
	c.do(call{method: "POST", path: "/v1/users/ann/messages", ctype: "text/plain", body: []byte{0xff}, want: 400})
	c.do(call{method: "POST", path: "/v1/users/ann/messages", ctype: "application/octet-stream", body: make([]byte, 64<<10+1), want: 413})
	c.do(call{method: "POST", path: "/v1/users/nobody/messages", ctype: "text/plain", body: []byte("x"), want: 202})

	// Topics.
	c.do(call{method: "PUT", path: "/v1/connections/" + bobID + "/topics/news", want: 204})
	c.do(call{method: "PUT", path: "/v1/connections/18446744073709551615/topics/news", want: 404})
	waitFor(t, func() bool { return srv.Subscribers("news") == 1 })
	c.do(call{method: "POST", path: "/v1/topics/news/messages", ctype: "application/x-www-form-urlencoded", body: []byte("a=1"), want: 202})
	if _, msg := readMsg(t, bob); msg != "a=1" {
		t.Fatalf("bob got %q", msg)
	}
	c.do(call{method: "POST", path: "/v1/topics/news/messages", ctype: "text/plain", body: []byte{0xc3}, want: 400})
	c.do(call{method: "POST", path: "/v1/topics/news/messages", ctype: "application/octet-stream", body: make([]byte, 64<<10+1), want: 413})
	c.do(call{method: "POST", path: "/v1/topics/empty/messages", ctype: "application/octet-stream", body: []byte{1}, want: 202})
	c.do(call{method: "DELETE", path: "/v1/connections/" + bobID + "/topics/news", want: 204})
	c.do(call{method: "DELETE", path: "/v1/connections/18446744073709551615/topics/news", want: 404})

	// Connections.
	c.do(call{method: "PUT", path: "/v1/connections/" + annID + "/topics/room", want: 204})
	waitFor(t, func() bool { return srv.Subscribers("room") == 1 })
	c.do(call{method: "GET", path: conn, want: 200})
	c.do(call{method: "GET", path: "/v1/connections/123", want: 404})
	c.do(call{method: "GET", path: "/v1/connections", want: 200})
	c.do(call{method: "GET", path: "/v1/connections?user=ann&limit=1", want: 200})
	c.do(call{method: "GET", path: "/v1/connections?topic=room", want: 200})
	c.do(call{method: "GET", path: "/v1/connections?limit=0", want: 400, specRejects: true})
	c.do(call{method: "GET", path: "/v1/connections?limit=1001", want: 400, specRejects: true})
	c.do(call{method: "GET", path: "/v1/connections?cursor=not-a-cursor", want: 400})
	c.do(call{method: "DELETE", path: "/v1/connections/" + bobID + "?code=5000", want: 400, specRejects: true})
	c.do(call{method: "DELETE", path: "/v1/connections/" + bobID + "?code=1005", want: 400})
	c.do(call{method: "DELETE", path: "/v1/connections/" + bobID, ctype: "application/json", body: []byte(`{"code":4001,"reason":"bye"}`), want: 202})
	bob.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := bob.ReadMessage(); !gorilla.IsCloseError(err, 4001) {
		t.Fatalf("bob saw %v, want close 4001", err)
	}
	c.do(call{method: "DELETE", path: "/v1/connections/123?code=1000&reason=x", want: 404})

	// Operations.
	c.do(call{method: "GET", path: "/v1/stats", want: 200})
	_, served := c.do(call{method: "GET", path: "/v1/openapi.yaml", want: 200})
	if file, _ := os.ReadFile(specFile); !bytes.Equal(served, file) {
		t.Error("GET /v1/openapi.yaml is not gateway/openapi.yaml")
	}
	c.do(call{method: "GET", path: "/metrics", want: 200})
	c.do(call{method: "GET", path: "/debug/pprof/", want: 200})
	c.do(call{method: "GET", path: "/debug/pprof/heap", want: 200})
	c.do(call{method: "GET", path: "/debug/pprof/goroutine?debug=1", want: 200})
	c.do(call{method: "GET", path: "/debug/pprof/nope", want: 404})
	// Two profiles at once: one is recorded, the other gets 409.
	for _, p := range []string{"/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=1"} {
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { c.do(call{method: "GET", path: p}) })
		}
		wg.Wait()
	}

	// A single node lists itself, not connected to any NATS.
	c.do(call{method: "GET", path: "/v1/cluster", want: 200})

	// Drain last: it closes every client.
	c.do(call{method: "POST", path: "/v1/drain", want: 202})
	c.do(call{method: "POST", path: "/v1/drain", want: 409})

	// Every documented status was reached, but those no test can cause.
	// 502 and 504 come from another node of a cluster (an answer this one
	// cannot read, none within cluster_timeout); TestOpenAPIContractCluster
	// covers the cluster's other answers.
	unreachable := map[string]bool{"500": true, "502": true, "503": true, "504": true}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + path
			for code := range op.Responses.Map() {
				n, err := strconv.Atoi(code)
				if err != nil {
					t.Errorf("%s: response %q is not a status", key, code)
					continue
				}
				if !unreachable[code] && !c.seen[key][n] {
					t.Errorf("%s: documented status %s never seen", key, code)
				}
			}
		}
	}
}

// The validator is not a rubber stamp: a real answer with a field
// missing, one too many, a wrong type or an undocumented status fails.
func TestOpenAPIValidatorCatchesDrift(t *testing.T) {
	srv, a := adminServer(t, gateway.Config{})
	base := "http://" + srv.AdminAddr().String()
	_, router := loadSpec(t, base)
	_, id := dialUser(t, srv, "ann")
	_, real := a.do("GET", "/v1/connections/"+id, "", nil)

	req, _ := http.NewRequest("GET", base+"/v1/connections/"+id, nil)
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatal(err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	json := http.Header{"Content-Type": {"application/json"}}
	if err := validateResponse(in, 200, json, real); err != nil {
		t.Fatalf("the real answer fails: %v", err)
	}
	for name, tc := range map[string]struct {
		status int
		body   string
	}{
		"missing id":         {200, strings.Replace(string(real), `"id":`, `"idx":`, 1)},
		"extra field":        {200, strings.Replace(string(real), `{`, `{"extra":1,`, 1)},
		"number id":          {200, strings.Replace(string(real), `"id":"`+id+`"`, `"id":`+id, 1)},
		"undocumented 418":   {418, `{"error":"teapot"}`},
		"error without text": {404, `{"message":"no"}`},
	} {
		if err := validateResponse(in, tc.status, json, []byte(tc.body)); err == nil {
			t.Errorf("%s: the validator accepted %d %s", name, tc.status, tc.body)
		}
	}
}
