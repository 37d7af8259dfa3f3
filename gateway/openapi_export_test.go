package gateway

import "strings"

// AdminRoutes returns the admin server's routes as "METHOD /path", in the
// form an OpenAPI document names them: the mux's {$} (this path only) is
// dropped. The OpenAPI test compares them with docs/api/openapi.yaml.
func AdminRoutes() []string {
	out := make([]string, len(adminRoutes))
	for i, r := range adminRoutes {
		out[i] = strings.TrimSuffix(r.pattern, "{$}")
	}
	return out
}
