package gateway

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// AdminHandler returns the admin API, which requires the header
// "Authorization: Bearer <admin_token>" on every call:
//
//   - GET /v1/upstreams: list upstreams with role, labels, source, health,
//     head, lag and in-flight calls (JSON array of UpstreamStatus);
//   - POST /v1/upstreams with {"name","url","role","labels"}: add an
//     upstream (201), persisted in the state file; 409 if the name exists;
//   - DELETE /v1/upstreams/{name}: remove an upstream added through the
//     admin API (204); 409 for one defined in the config file or taken
//     from the cluster's membership, 404 if none.
//
// Errors are JSON objects {"error": "..."}.
func (g *Gateway) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/upstreams", func(w http.ResponseWriter, r *http.Request) {
		adminJSON(w, http.StatusOK, g.Upstreams())
	})
	mux.HandleFunc("POST /v1/upstreams", func(w http.ResponseWriter, r *http.Request) {
		var c UpstreamConfig
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			adminError(w, http.StatusBadRequest, "invalid JSON: "+err.Error())
			return
		}
		if err := g.AddUpstream(c); err != nil {
			status := http.StatusBadRequest
			switch {
			case errors.Is(err, ErrUpstreamExists):
				status = http.StatusConflict
			case strings.HasPrefix(err.Error(), "gateway: save state"):
				status = http.StatusInternalServerError
			}
			adminError(w, status, err.Error())
			return
		}
		c.Validate() // fills in the default role for the answer
		adminJSON(w, http.StatusCreated, c)
	})
	mux.HandleFunc("DELETE /v1/upstreams/{name}", func(w http.ResponseWriter, r *http.Request) {
		err := g.RemoveUpstream(r.PathValue("name"))
		switch {
		case err == nil:
			w.WriteHeader(http.StatusNoContent)
		case errors.Is(err, ErrUpstreamNotFound):
			adminError(w, http.StatusNotFound, err.Error())
		case errors.Is(err, ErrUpstreamInConfig), errors.Is(err, ErrUpstreamInMembership):
			adminError(w, http.StatusConflict, err.Error())
		default:
			adminError(w, http.StatusInternalServerError, err.Error())
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := g.rt.Load().cfg.AdminToken
		got := r.Header.Get("Authorization")
		if token == "" || subtle.ConstantTimeCompare([]byte(got), []byte("Bearer "+token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hansa-gateway-admin"`)
			adminError(w, http.StatusUnauthorized, "unauthorized: admin bearer token required")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func adminError(w http.ResponseWriter, status int, msg string) {
	adminJSON(w, status, map[string]string{"error": msg})
}
