package deploy

import (
	"bufio"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
)

// Settings the manifests use that the gateway does not have yet: the
// cluster's, which another change adds. Remove each name here once
// --print-config knows it (the test says when).
var pendingSettings = map[string]bool{}

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
