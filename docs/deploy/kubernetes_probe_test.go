package deploy

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
)

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
