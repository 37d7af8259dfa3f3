//go:build linux

package main

import "testing"

// The resume scenario against the real gateway binary: a share of the
// clients is cut by RST while pushes flow; every message arrives exactly
// once, the drops all resume.
func TestResumeScenario(t *testing.T) {
	s := startServer(t, "--app", "broadcast")
	if s.kind != "wsgate" {
		t.Skip("the in-process server does not speak the resume envelope")
	}
	rep := runScenario(t, "resume", "--url", s.url, "--conns", "41", "--rate", "50", "--size", "64",
		"--duration", "3s", "--storm-after", "1s", "--drop-share", "0.5", "--backoff", "100ms", "--backoff-max", "500ms")
	r := rep.Resume
	if r == nil {
		t.Fatal("no resume section in the report")
	}
	if r.Clients != 40 || r.Dropped != 20 || r.Published == 0 {
		t.Fatalf("report %+v", r)
	}
	if r.Received != r.Expected || r.Duplicated != 0 || r.Gaps != 0 || r.MissedSilently != 0 {
		t.Errorf("received %d of %d, duplicated %d, gaps %d, silent %d", r.Received, r.Expected, r.Duplicated, r.Gaps, r.MissedSilently)
	}
	if r.Resumed != int64(r.Dropped) || r.Missed != 0 || r.ResumeMS.Count != int64(r.Dropped) {
		t.Errorf("resumed %d, missed %d, resume times %d, for %d dropped", r.Resumed, r.Missed, r.ResumeMS.Count, r.Dropped)
	}
}
