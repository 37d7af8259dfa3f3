package deploy

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"go.yaml.in/yaml/v3"
)

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
