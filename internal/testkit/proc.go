package testkit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"time"
)

// Proc is a gateway process a test started with Launch.
type Proc struct {
	Cmd   *exec.Cmd
	Addr  string      // the address of its listening line
	Admin string      // the admin server's, if it logged one first
	Logs  chan string // its log lines (the latest 1000 unread), closed when it exits
}

// The listening lines, in text or JSON logs.
var (
	listenRE = regexp.MustCompile(`(?:msg="wsgate listening" addr=|"msg":"wsgate listening","addr":")([^\s"]+)`)
	adminRE  = regexp.MustCompile(`(?:msg="admin listening" addr=|"msg":"admin listening","addr":")([^\s"]+)`)
)

// Launch starts the gateway binary bin with args (env added to this
// process's environment) and waits, up to 20 s, for its listening line:
// the one sign of readiness every test uses, with a port of its own
// choosing or :0. Each log line is also written to tee, if not nil. On
// failure the process is killed.
func Launch(bin string, env []string, tee io.Writer, args ...string) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if tee != nil {
		cmd.Stdout = tee
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Cmd: cmd, Logs: make(chan string, 1000)}
	found := make(chan string, 1)
	admin := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if tee != nil {
				fmt.Fprintln(tee, line)
			}
			if m := adminRE.FindStringSubmatch(line); m != nil {
				select {
				case admin <- m[1]:
				default:
				}
			}
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
			select {
			case p.Logs <- line:
			default:
			}
		}
		close(p.Logs)
	}()
	select {
	case p.Addr = <-found:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, errors.New("the gateway did not report its address within 20s")
	}
	select { // logged before the listening line, if at all
	case p.Admin = <-admin:
	default:
	}
	return p, nil
}
