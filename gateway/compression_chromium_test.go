package gateway_test

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
)

// TestCompressionChromium: headless Chromium loads the demo page with
// #selftest; the page shows the negotiated extension, echoes a short text
// and 1 MiB of compressible text twice, and sends back "selftest ok
// <ws.extensions>". Chromium always offers permessage-deflate; the
// gateway's Stats must show the bytes compressed both ways. A missing
// Chromium fails the test (CI installs it, .ci/run).
func TestCompressionChromium(t *testing.T) {
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s: %v (apt-get install chromium, or set CHROMIUM)", chromium, err)
	}
	for _, tc := range []struct {
		ctx  string
		want string // ws.extensions as Chromium reports it
	}{
		{"", "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"on", "permessage-deflate; client_max_window_bits=12"},
	} {
		t.Run("context="+tc.ctx, func(t *testing.T) {
			result := make(chan string, 1)
			h := gateway.HandlerFuncs{Message: func(c *gateway.Conn, op gateway.OpCode, data []byte) {
				if s := string(data); strings.HasPrefix(s, "selftest ") {
					select {
					case result <- s:
					default:
					}
					return
				}
				_ = c.Send(op, data)
			}}
			srv := startServer(t, gateway.Config{DemoPage: true, CompressionContext: tc.ctx, MaxMessageSize: 2 << 20}, h)
			profile := t.TempDir()
			cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
				"--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--user-data-dir="+profile, "http://"+srv.Addr().String()+"/#selftest")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer func() {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}()
			var got string
			select {
			case got = <-result:
			case err := <-exited:
				t.Fatalf("chromium exited (%v) before the page reported:\n%s", err, tail(stderr.String(), 2000))
			case <-time.After(240 * time.Second):
				t.Fatalf("no result from the page in 240 s:\n%s", tail(stderr.String(), 2000))
			}
			if got != "selftest ok "+tc.want {
				t.Fatalf("page: %q, want %q", got, "selftest ok "+tc.want)
			}
			st := srv.Stats()
			if st.CompressionUpgrades != 1 || st.CompressionInPlain < 2<<20 || st.CompressionOutPlain < 2<<20 ||
				st.CompressionInWire*4 > st.CompressionInPlain || st.CompressionOutWire*4 > st.CompressionOutPlain {
				t.Fatalf("compressed both ways? upgrades %d, in %d plain / %d wire, out %d plain / %d wire",
					st.CompressionUpgrades, st.CompressionInPlain, st.CompressionInWire, st.CompressionOutPlain, st.CompressionOutWire)
			}
			t.Logf("Chromium: in %d plain / %d wire, out %d plain / %d wire", st.CompressionInPlain, st.CompressionInWire, st.CompressionOutPlain, st.CompressionOutWire)
		})
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
