// Package gateway is a health-aware, closed-by-default JSON-RPC gateway in
// front of any Ethereum JSON-RPC nodes ("upstreams").
//
// Roles: health judgement (Policy.Evaluate, Corroborate) and upstream
// selection (Pick) are pure functions of samples and snapshots; the
// Gateway's front (a fasthttp server, front.go) authenticates, limits,
// authorises and routes each call; Run binds the listeners and runs the thin health runner that polls
// upstreams, feeds the policy and publishes its verdicts, and, when the
// config has a membership section, the membership runner that takes
// upstreams from a Hansa cluster (planMembers decides, the runner acts).
//
// Invariants:
//   - No request is served without a known API key unless the config sets
//     allow_anonymous explicitly.
//   - Lag is measured against a corroborated head (reported by at least
//     Corroboration upstreams on the majority or configured chain id), never
//     against one upstream alone.
//   - A call naming block N goes only to an upstream whose head is at least
//     N, when one is healthy.
//   - Only calls that are safe to repeat are retried on another upstream;
//     eth_sendRawTransaction is retried with the same signed bytes and
//     "already known" or "nonce too low" for a transaction with the same hash
//     count as success; other writes are never retried.
//   - Config swaps are atomic: a call sees one whole config.
//   - A cluster member gets new calls only while the cluster reports it up
//     and not leaving (and the gateway's own health checks pass); a member
//     that leaves is drained (calls in flight finish) before it is removed;
//     a failed membership poll never changes the upstream set.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// runtime is one validated configuration with what is compiled from it.
type runtime struct {
	cfg    Config
	keys   *keyring
	policy Policy
}

// Addrs are the addresses the gateway's listeners are bound to ("" when
// off).
type Addrs struct {
	HTTP  string // JSON-RPC over HTTP
	Ops   string // /metrics, /healthz, /readyz
	Admin string // admin API
}

// Gateway proxies JSON-RPC calls to healthy upstreams. New builds it
// without starting anything, and Run binds its listeners and runs the
// health runner. Its methods are safe for concurrent
// use.
type Gateway struct {
	logger  *slog.Logger
	reg     *prometheus.Registry
	metrics *Metrics
	client  *http.Client
	limiter *limiter
	filters *filterTable
	store   *stateStore
	seq     atomic.Uint64
	direct  directGate // admits calls to the upstreams' blocking connections
	// frontRead and frontIdle bound reading a request and a keep-alive
	// connection's wait for the next one (frontReadTimeout and
	// frontIdleTimeout; tests shorten them before serving).
	frontRead, frontIdle time.Duration

	rt  atomic.Pointer[runtime]
	ups atomic.Pointer[[]*upstream] // immutable snapshot, replaced under upMu

	upMu       sync.Mutex            // serialises changes of the upstream set
	adminUps   []UpstreamConfig      // added through the admin API, guarded by upMu
	memberUps  []UpstreamConfig      // taken from the cluster's membership, guarded by upMu
	memberMode map[string]memberMode // routing of memberUps by name, guarded by upMu

	memMu   sync.Mutex // serialises membership rounds
	members *discovery // owned by the membership round, guarded by memMu

	sessMu   sync.Mutex // guards sessions
	sessions map[*wsSession]struct{}

	pollMu sync.Mutex        // serialises health rounds
	health map[string]Health // owned by the health round, guarded by pollMu
	lowWas bool              // healthy count was below the alert threshold

	alerts chan string

	bound  chan struct{}
	addrMu sync.Mutex
	addrs  Addrs
}

// New validates cfg, loads the upstreams persisted in cfg.StateFile and
// registers the gateway's metrics on reg. It starts no goroutine and binds
// no socket: Run does.
func New(cfg Config, logger *slog.Logger, reg *prometheus.Registry) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger = logger.With("component", "gateway")
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
		// Upstreams on a private network: asking for gzip makes geth
		// compress and the gateway decompress every answer (measured: the
		// gzip reader alone was ~3% of the gateway's CPU, plus geth's).
		DisableCompression: true,
	}
	g := &Gateway{
		logger:  logger,
		reg:     reg,
		metrics: NewMetrics(reg),
		client:  &http.Client{Transport: transport},
		limiter: newLimiter(),
		filters: newFilterTable(),
		store:   &stateStore{path: cfg.StateFile},
		health:  map[string]Health{},
		alerts:  make(chan string, 64),
		bound:   make(chan struct{}),

		frontRead: frontReadTimeout,
		frontIdle: frontIdleTimeout,

		memberMode: map[string]memberMode{},
		members:    newDiscovery(),
		sessions:   map[*wsSession]struct{}{},
	}
	saved, err := g.store.load()
	if err != nil {
		return nil, err
	}
	g.adminUps = saved
	g.rt.Store(&runtime{cfg: cfg, keys: newKeyring(&cfg), policy: PolicyFromConfig(&cfg)})
	g.direct.limit.Store(int64(cfg.Limits.DirectCalls))
	g.rebuildUpstreams()
	return g, nil
}

// Reload validates cfg and swaps it in atomically: keys, limits, health
// policy, alerts, the config file's upstreams and the membership settings
// change; listen addresses, the state file, the request body limit and
// whether the membership section is on do not (a change is logged and
// ignored). An invalid cfg leaves the running config untouched.
func (g *Gateway) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	old := g.rt.Load().cfg
	if cfg.HTTPAddr != old.HTTPAddr || cfg.OpsAddr != old.OpsAddr || cfg.AdminAddr != old.AdminAddr || cfg.StateFile != old.StateFile {
		g.logger.Warn("listen addresses and state_file cannot change on reload; restart to apply")
		cfg.HTTPAddr, cfg.OpsAddr, cfg.AdminAddr, cfg.StateFile = old.HTTPAddr, old.OpsAddr, old.AdminAddr, old.StateFile
	}
	if cfg.Limits.MaxBodyBytes != old.Limits.MaxBodyBytes {
		g.logger.Warn("limits.max_body_bytes cannot change on reload (the HTTP front reads bodies up to it); restart to apply")
		cfg.Limits.MaxBodyBytes = old.Limits.MaxBodyBytes
	}
	if cfg.Limits.FrontLoops != old.Limits.FrontLoops {
		g.logger.Warn("limits.front_loops cannot change on reload; restart to apply")
		cfg.Limits.FrontLoops = old.Limits.FrontLoops
	}
	if cfg.Membership.Enabled() != old.Membership.Enabled() {
		g.logger.Warn("the membership section cannot be turned on or off on reload; restart to apply")
		cfg.Membership = old.Membership
	}
	g.rt.Store(&runtime{cfg: cfg, keys: newKeyring(&cfg), policy: PolicyFromConfig(&cfg)})
	g.direct.limit.Store(int64(cfg.Limits.DirectCalls))
	g.rebuildUpstreams()
	g.logger.Info("config reloaded", "upstreams", len(g.snapshot()), "keys", len(cfg.Keys))
	return nil
}

// snapshot returns the current upstreams; the slice must not be modified.
func (g *Gateway) snapshot() []*upstream { return *g.ups.Load() }

// rebuildUpstreams recomputes the upstream set from the config, the admin
// list and the membership, keeping the state of upstreams whose definition
// is unchanged. On a name clash the config file wins, then the admin API.
func (g *Gateway) rebuildUpstreams() {
	g.upMu.Lock()
	defer g.upMu.Unlock()
	g.rebuildLocked()
}

func (g *Gateway) rebuildLocked() {
	cfg := g.rt.Load().cfg
	var old []*upstream
	if p := g.ups.Load(); p != nil {
		old = *p
	}
	byName := map[string]*upstream{}
	for _, u := range old {
		byName[u.cfg.Name] = u
	}
	var next []*upstream
	seen := map[string]bool{}
	add := func(c UpstreamConfig, source string) {
		if seen[c.Name] {
			g.logger.Warn("upstream shadowed by another of the same name", "upstream", c.Name, "source", source)
			return
		}
		seen[c.Name] = true
		if u := byName[c.Name]; u != nil && sameUpstream(u.cfg, c) && u.source == source {
			next = append(next, u)
			return
		}
		next = append(next, newUpstream(c, source, g.client, g.metrics, &g.direct))
	}
	for _, c := range cfg.Upstreams {
		add(c, "config")
	}
	for _, c := range g.adminUps {
		add(c, "admin")
	}
	for _, c := range g.memberUps {
		add(c, sourceMembership)
	}
	g.applyModesLocked(next) // before the set is published
	for _, u := range old {
		if !seen[u.cfg.Name] {
			g.metrics.forget(u.cfg.Name)
		}
	}
	g.ups.Store(&next)
}

func sameUpstream(a, b UpstreamConfig) bool {
	if a.Name != b.Name || a.URL != b.URL || a.WSURL != b.WSURL || a.Role != b.Role || len(a.Labels) != len(b.Labels) ||
		a.BatchMax != b.BatchMax || a.BatchSlots != b.BatchSlots {
		return false
	}
	for k, v := range a.Labels {
		if b.Labels[k] != v {
			return false
		}
	}
	return true
}

// Addrs waits until Run has bound the listeners and returns their
// addresses.
func (g *Gateway) Addrs(ctx context.Context) (Addrs, error) {
	select {
	case <-g.bound:
		g.addrMu.Lock()
		defer g.addrMu.Unlock()
		return g.addrs, nil
	case <-ctx.Done():
		return Addrs{}, ctx.Err()
	}
}

// Ready reports whether the gateway can serve calls: some primary is
// healthy or a fallback exists (among upstreams the membership lets take
// calls).
func (g *Gateway) Ready() error {
	ups := g.snapshot()
	for _, u := range ups {
		if u.routable() && (u.cfg.Role == RoleFallback || u.healthy.Load()) {
			return nil
		}
	}
	if len(ups) == 0 {
		return errors.New("no upstreams configured")
	}
	return errors.New("no healthy upstream")
}

// UpstreamStatus is one upstream as the admin API lists it.
type UpstreamStatus struct {
	UpstreamConfig
	// Source is "config" (from the config file), "admin" (added through
	// the admin API and persisted) or "membership" (taken from the
	// cluster's membership, not persisted).
	Source   string `json:"source"`
	Healthy  bool   `json:"healthy"`
	Reason   string `json:"reason,omitempty"`
	Head     uint64 `json:"head"`
	Lag      uint64 `json:"lag"`
	InFlight int64  `json:"in_flight"`
	// Excluded is set while the cluster reports the member catching up,
	// down or unknown; Draining while it is leaving or no longer listed.
	// Either keeps new calls away.
	Excluded bool `json:"excluded,omitempty"`
	Draining bool `json:"draining,omitempty"`
}

// Upstreams lists the upstreams and their last judged health.
func (g *Gateway) Upstreams() []UpstreamStatus {
	ups := g.snapshot()
	out := make([]UpstreamStatus, 0, len(ups))
	for _, u := range ups {
		h := u.health.Load()
		out = append(out, UpstreamStatus{UpstreamConfig: u.cfg, Source: u.source, Healthy: u.healthy.Load(),
			Reason: h.Reason, Head: u.head.Load(), Lag: h.Lag, InFlight: u.inFlight.Load(),
			Excluded: u.excluded.Load(), Draining: u.draining.Load()})
	}
	return out
}

// ErrUpstreamExists and ErrUpstreamNotFound are returned by AddUpstream and
// RemoveUpstream; ErrUpstreamInConfig means the upstream is defined in the
// config file and can only be removed there; ErrUpstreamInMembership means
// it comes from the cluster's membership and leaves with its member.
var (
	ErrUpstreamExists       = errors.New("upstream already exists")
	ErrUpstreamNotFound     = errors.New("upstream not found")
	ErrUpstreamInConfig     = errors.New("upstream is defined in the config file")
	ErrUpstreamInMembership = errors.New("upstream comes from the cluster's membership")
)

// AddUpstream adds an upstream and persists it in the state file before it
// takes traffic (after its first good poll). While the membership section
// is on, the names member-<id> are reserved for its upstreams.
func (g *Gateway) AddUpstream(c UpstreamConfig) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if strings.HasPrefix(c.Name, memberPrefix) && g.rt.Load().cfg.Membership.Enabled() {
		return fmt.Errorf("upstream %q: names starting with %q are reserved for the cluster's members", c.Name, memberPrefix)
	}
	g.upMu.Lock()
	defer g.upMu.Unlock()
	if slices.ContainsFunc(g.snapshot(), func(u *upstream) bool { return u.cfg.Name == c.Name }) {
		return fmt.Errorf("%w: %s", ErrUpstreamExists, c.Name)
	}
	next := append(slices.Clone(g.adminUps), c)
	if err := g.store.save(next); err != nil {
		return err
	}
	g.adminUps = next
	g.rebuildLocked()
	g.logger.Info("upstream added", "upstream", c.Name, "role", c.Role)
	return nil
}

// RemoveUpstream removes an upstream added through the admin API and
// persists the removal.
func (g *Gateway) RemoveUpstream(name string) error {
	g.upMu.Lock()
	defer g.upMu.Unlock()
	i := slices.IndexFunc(g.adminUps, func(c UpstreamConfig) bool { return c.Name == name })
	if i < 0 {
		if slices.ContainsFunc(g.rt.Load().cfg.Upstreams, func(c UpstreamConfig) bool { return c.Name == name }) {
			return fmt.Errorf("%w: %s", ErrUpstreamInConfig, name)
		}
		if slices.ContainsFunc(g.memberUps, func(c UpstreamConfig) bool { return c.Name == name }) {
			return fmt.Errorf("%w: %s", ErrUpstreamInMembership, name)
		}
		return fmt.Errorf("%w: %s", ErrUpstreamNotFound, name)
	}
	next := slices.Delete(slices.Clone(g.adminUps), i, i+1)
	if err := g.store.save(next); err != nil {
		return err
	}
	g.adminUps = next
	g.rebuildLocked()
	g.logger.Info("upstream removed", "upstream", name)
	return nil
}
