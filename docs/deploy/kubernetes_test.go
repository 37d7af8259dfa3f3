package deploy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
	"go.yaml.in/yaml/v3"

	"github.com/wsgate/wsgate/gateway"
)

// Settings the manifests use that the gateway does not have yet: the
// cluster's, which another change adds. Remove each name here once
// --print-config knows it (the test says when).
var pendingSettings = map[string]bool{"nats": true, "node_id": true, "cluster_name": true}

// The parts of the manifests the tests read.
type (
	manifest struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name        string            `yaml:"name"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
		Spec       spec              `yaml:"spec"`
		StringData map[string]string `yaml:"stringData"`
	}
	spec struct {
		// Deployment
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					RunAsUser    int  `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []container `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
		// Service
		Type         string            `yaml:"type"`
		ServiceSel   map[string]string `yaml:"-"`
		ServicePorts []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
		// PodDisruptionBudget
		MaxUnavailable any `yaml:"maxUnavailable"`
		MinAvailable   any `yaml:"minAvailable"`
	}
	container struct {
		Name    string   `yaml:"name"`
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Args    []string `yaml:"args"`
		Env     []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
				FieldRef *struct {
					FieldPath string `yaml:"fieldPath"`
				} `yaml:"fieldRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		Lifecycle      struct {
			PreStop map[string]any `yaml:"preStop"`
		} `yaml:"lifecycle"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port any    `yaml:"port"`
		} `yaml:"httpGet"`
		Exec map[string]any `yaml:"exec"`
	}
)

// readManifests parses every YAML document of kubernetes/.
func readManifests(t *testing.T) map[string][]manifest {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	out := map[string][]manifest{}
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(r)
		for {
			var node yaml.Node
			err := dec.Decode(&node)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var m manifest
			if err := node.Decode(&m); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			// A Service's selector is a plain map, a Deployment's is not.
			var raw struct {
				Spec struct {
					Selector any `yaml:"selector"`
				} `yaml:"spec"`
			}
			node.Decode(&raw)
			if sel, ok := raw.Spec.Selector.(map[string]any); ok && m.Kind == "Service" {
				m.Spec.ServiceSel = map[string]string{}
				for k, v := range sel {
					m.Spec.ServiceSel[k], _ = v.(string)
				}
			}
			if m.Kind == "" || m.Metadata.Name == "" {
				t.Fatalf("%s: a document without kind or name", f)
			}
			out[m.Kind] = append(out[m.Kind], m)
		}
		r.Close()
	}
	return out
}

func one(t *testing.T, ms map[string][]manifest, kind string) manifest {
	t.Helper()
	if len(ms[kind]) != 1 {
		t.Fatalf("%d %s manifests, want 1", len(ms[kind]), kind)
	}
	return ms[kind][0]
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// gatewayContainer returns the Deployment's container, its command line
// (args) and its environment (secrets and fields filled in).
func gatewayContainer(t *testing.T, ms map[string][]manifest) (container, []string, []string) {
	t.Helper()
	d := one(t, ms, "Deployment")
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	secrets := map[string]map[string]string{}
	for _, s := range ms["Secret"] {
		secrets[s.Metadata.Name] = s.StringData
	}
	var env []string
	for _, e := range c.Env {
		v := e.Value
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, ok := secrets[ref.Name][ref.Key]
			if !ok {
				t.Errorf("%s: secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			v = s
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			if e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
				t.Errorf("%s: fieldRef %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			v = "wsgate-7d9f-abcde"
		}
		env = append(env, e.Name+"="+v)
	}
	return c, c.Args, env
}

// portOf resolves a probe's or Service's port (a name or a number) to
// the container's port number.
func portOf(t *testing.T, c container, p any) int {
	t.Helper()
	for _, cp := range c.Ports {
		if p == cp.Name || p == cp.ContainerPort {
			return cp.ContainerPort
		}
	}
	t.Errorf("port %v is none of the container's", p)
	return 0
}

func addrPort(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%q: %v", addr, err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// The manifests agree with each other and with the gateway: settings it
// has, its ports, its probe paths, and a grace period that covers a drain.
func TestKubernetesManifests(t *testing.T) {
	ms := readManifests(t)
	d := one(t, ms, "Deployment")
	podLabels := d.Spec.Template.Metadata.Labels
	if !subset(d.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("the Deployment's selector %v does not match its pods %v", d.Spec.Selector.MatchLabels, podLabels)
	}
	c, args, env := gatewayContainer(t, ms)

	// Flags and variables are the gateway's settings.
	names := settingNames(t)
	for name := range pendingSettings {
		if names[name] {
			t.Errorf("the gateway now has %q: remove it from pendingSettings", name)
		}
	}
	for _, a := range args {
		flag, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if name := strings.ReplaceAll(flag, "-", "_"); !strings.HasPrefix(a, "--") || !names[name] && !pendingSettings[name] {
			t.Errorf("argument %q is no setting of the gateway", a)
		}
	}
	var known []string
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		name, ok := strings.CutPrefix(k, "WSGATE_")
		name = strings.ToLower(name)
		switch {
		case !ok || !names[name] && !pendingSettings[name]:
			t.Errorf("variable %s is no setting of the gateway", k)
		case names[name]:
			known = append(known, e)
		}
	}
	for _, want := range []string{"WSGATE_NATS", "WSGATE_NODE_ID", "WSGATE_CLUSTER_NAME"} {
		if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, want+"=") }) {
			t.Errorf("the container has no %s: the NATS wiring", want)
		}
	}
	eff := effective(t, args, known)

	// Ports.
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if got := addrPort(t, eff["listen"].(string)); got != ports["ws"] {
		t.Errorf("the gateway listens on %d, the container port ws is %d", got, ports["ws"])
	}
	admin := eff["admin"].(string)
	if got := addrPort(t, admin); got != ports["admin"] {
		t.Errorf("the admin address is %s, the container port admin is %d", admin, ports["admin"])
	}
	if host, _, _ := net.SplitHostPort(admin); host == "127.0.0.1" || host == "localhost" {
		t.Errorf("admin on %s: unreachable for Prometheus and the admin Service", admin)
	}

	// Probes: the health routes, on the WebSocket port, over HTTP (the
	// image has no shell for an exec probe).
	for name, pr := range map[string]*probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		want := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}[name]
		switch {
		case pr == nil || pr.HTTPGet == nil:
			t.Errorf("no %s httpGet probe", name)
		case pr.Exec != nil:
			t.Errorf("%s probe runs a command: the image has no shell", name)
		case pr.HTTPGet.Path != want:
			t.Errorf("%s probe on %s, want %s", name, pr.HTTPGet.Path, want)
		case portOf(t, c, pr.HTTPGet.Port) != ports["ws"]:
			t.Errorf("%s probe on port %v, want the WebSocket port", name, pr.HTTPGet.Port)
		}
	}
	if len(c.Command) > 0 {
		t.Errorf("command %v: the image's entrypoint is the gateway; give arguments only", c.Command)
	}

	// Timings: the kubelet waits for preStop, then SIGTERM drains.
	sleep := 0
	pre := c.Lifecycle.PreStop
	if s, ok := pre["sleep"].(map[string]any); ok {
		sleep, _ = s["seconds"].(int)
	}
	if _, ok := pre["exec"]; ok {
		t.Error("preStop runs a command: the image has no shell")
	}
	window := max(duration(t, eff, "drain_window"), gateway.DefaultDrainWindow)
	grace := max(duration(t, eff, "drain_grace"), gateway.DefaultDrainGrace)
	need := time.Duration(sleep)*time.Second + window + grace + shutdownBound
	if got := time.Duration(d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second; got <= need {
		t.Errorf("terminationGracePeriodSeconds %v: preStop %ds + drain %v + grace %v + shutdown %v need more", got, sleep, window, grace, shutdownBound)
	}

	// Services: they select the pods and target its named ports; the
	// public one is an NLB with PROXY v2, which the gateway reads.
	var public *manifest
	for i, s := range ms["Service"] {
		if !subset(s.Spec.ServiceSel, podLabels) {
			t.Errorf("Service %s selects %v, not the pods %v", s.Metadata.Name, s.Spec.ServiceSel, podLabels)
		}
		for _, p := range s.Spec.ServicePorts {
			portOf(t, c, p.TargetPort)
		}
		if s.Spec.Type == "LoadBalancer" {
			public = &ms["Service"][i]
		}
	}
	if public == nil {
		t.Fatal("no Service of type LoadBalancer")
	}
	ann := public.Metadata.Annotations
	for k, v := range map[string]string{
		"service.beta.kubernetes.io/aws-load-balancer-type":             "external",
		"service.beta.kubernetes.io/aws-load-balancer-nlb-target-type":  "ip",
		"service.beta.kubernetes.io/aws-load-balancer-proxy-protocol":   "*",
		"service.beta.kubernetes.io/aws-load-balancer-healthcheck-path": c.ReadinessProbe.HTTPGet.Path,
	} {
		if ann[k] != v {
			t.Errorf("the LoadBalancer's %s is %q, want %q", k, ann[k], v)
		}
	}
	if pp := eff["proxy_protocol"]; pp != "optional" && pp != "required" {
		t.Errorf("the NLB sends PROXY v2 but --proxy-protocol is %v", pp)
	}
	for _, p := range public.Spec.ServicePorts {
		if portOf(t, c, p.TargetPort) != ports["ws"] {
			t.Errorf("the LoadBalancer targets %v, not the WebSocket port", p.TargetPort)
		}
	}

	// The PodDisruptionBudget covers the pods and lets one go at a time.
	pdb := one(t, ms, "PodDisruptionBudget")
	if !subset(pdb.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("the PodDisruptionBudget selects %v, not the pods", pdb.Spec.Selector.MatchLabels)
	}
	if pdb.Spec.MaxUnavailable != 1 {
		t.Errorf("maxUnavailable %v, want 1", pdb.Spec.MaxUnavailable)
	}

	// The pod runs as the image's user.
	sc := d.Spec.Template.Spec.SecurityContext
	if uid := imageUID(t); !sc.RunAsNonRoot || sc.RunAsUser != uid {
		t.Errorf("pods run as %d (non-root %v), the image's user is %d", sc.RunAsUser, sc.RunAsNonRoot, uid)
	}
	if exposed := imageExposed(t); !slices.Contains(exposed, ports["ws"]) || !slices.Contains(exposed, ports["admin"]) {
		t.Errorf("the image exposes %v, the container ports are %v", exposed, ports)
	}
}

// imageUID returns the uid of the Dockerfile's USER, checked against the
// passwd file the image carries.
func imageUID(t *testing.T) int {
	t.Helper()
	user := dockerfile(t, "USER")
	uid, err := strconv.Atoi(strings.Split(user[0], ":")[0])
	if err != nil || uid == 0 {
		t.Fatalf("USER %v: want a non-root uid", user)
	}
	raw, err := os.ReadFile("container/passwd")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if f := strings.Split(line, ":"); len(f) == 7 && f[2] == strconv.Itoa(uid) {
			return uid
		}
	}
	t.Fatalf("container/passwd has no entry for uid %d", uid)
	return 0
}

func imageExposed(t *testing.T) []int {
	var out []int
	for _, p := range dockerfile(t, "EXPOSE") {
		n, _ := strconv.Atoi(strings.Split(p, "/")[0])
		out = append(out, n)
	}
	return out
}

// dockerfile returns the arguments of the Dockerfile's last instr.
func dockerfile(t *testing.T, instr string) []string {
	t.Helper()
	f, err := os.Open("container/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 1 && strings.EqualFold(fields[0], instr) {
			out = fields[1:]
		}
	}
	if out == nil {
		t.Fatalf("container/Dockerfile has no %s", instr)
	}
	return out
}

// The image is static and shell-less: FROM scratch, and the binary the
// build script makes has no dynamic loader to need.
func TestContainerfile(t *testing.T) {
	if from := dockerfile(t, "FROM"); len(from) != 1 || from[0] != "scratch" {
		t.Errorf("FROM %v, want scratch: nothing to pull, no shell", from)
	}
	if ep := dockerfile(t, "ENTRYPOINT"); !strings.Contains(strings.Join(ep, " "), "/usr/local/bin/wsgate") {
		t.Errorf("ENTRYPOINT %v", ep)
	}
	raw, err := os.ReadFile("container/build.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "CGO_ENABLED=0") {
		t.Error("build.sh does not build with CGO_ENABLED=0")
	}
	imageUID(t)
}

// The pod's command line runs: the binary started with the Deployment's
// arguments and environment answers the probes without a PROXY header
// (as the kubelet sends them), and /readyz turns 503 on SIGTERM while
// the connections drain.
func TestKubernetesProbesOnTheRealBinary(t *testing.T) {
	ms := readManifests(t)
	c, args, env := gatewayContainer(t, ms)
	ws, admin := freeAddr(t), freeAddr(t)
	var run []string
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "--listen="):
			a = "--listen=" + ws
		case strings.HasPrefix(a, "--admin="):
			a = "--admin=" + admin
		}
		run = append(run, a)
	}
	var known []string
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		if !pendingSettings[strings.ToLower(strings.TrimPrefix(k, "WSGATE_"))] {
			known = append(known, e)
		}
	}
	cmd := exec.Command(binary(t), run...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, known...)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	get := func(path string) int {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + ws + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(30 * time.Second)
	for get(c.ReadinessProbe.HTTPGet.Path) != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered 200", c.ReadinessProbe.HTTPGet.Path)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := get(c.LivenessProbe.HTTPGet.Path); got != 200 {
		t.Fatalf("%s: %d", c.LivenessProbe.HTTPGet.Path, got)
	}
	// The admin address takes the Secret's token.
	req, _ := http.NewRequest("GET", "http://"+admin+"/v1/stats", nil)
	for _, e := range known {
		if tok, ok := strings.CutPrefix(e, "WSGATE_ADMIN_TOKEN="); ok {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin with the Secret's token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// A client holds the drain open; SIGTERM turns readiness to 503.
	client, _, err := (&gorilla.Dialer{HandshakeTimeout: 10 * time.Second}).Dial("ws://"+ws+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		got := get(c.ReadinessProbe.HTTPGet.Path)
		if got == 503 {
			break
		}
		if got != 200 || time.Now().After(deadline) {
			t.Fatalf("after SIGTERM %s answered %d, want 503 while draining", c.ReadinessProbe.HTTPGet.Path, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := get(c.LivenessProbe.HTTPGet.Path); got != 200 {
		t.Errorf("liveness during the drain: %d, want 200 (a kill would cut the drain short)", got)
	}
}
