package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hansa-chain/hansa/internal/telemetry"
)

// Run binds the listeners (JSON-RPC, and ops and admin when configured),
// then polls the upstreams every poll interval, the cluster's membership
// every membership interval (when configured) and sends alerts until ctx
// ends or a listener fails. It returns nil after a shutdown caused by ctx.
func (g *Gateway) Run(ctx context.Context) error {
	cfg := g.rt.Load().cfg
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type server struct {
		name  string
		ln    net.Listener
		serve func(context.Context, net.Listener) error
	}
	var servers []server
	closeAll := func() {
		for _, s := range servers {
			s.ln.Close()
		}
	}
	serveHTTP := func(name string, h http.Handler) func(context.Context, net.Listener) error {
		return func(ctx context.Context, ln net.Listener) error {
			return telemetry.Serve(ctx, ln, h, g.logger.With("listener", name))
		}
	}
	for _, s := range []struct {
		name, addr string
		serve      func(context.Context, net.Listener) error
	}{
		{"http", cfg.HTTPAddr, g.serveFront},
		{"ops", cfg.OpsAddr, serveHTTP("ops", telemetry.NewOpsHandler(g.reg, nil, g.Ready))},
		{"admin", cfg.AdminAddr, serveHTTP("admin", g.AdminHandler())},
	} {
		if s.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("gateway: listen %s %s: %w", s.name, s.addr, err)
		}
		servers = append(servers, server{s.name, ln, s.serve})
	}
	g.addrMu.Lock()
	for _, s := range servers {
		switch s.name {
		case "http":
			g.addrs.HTTP = s.ln.Addr().String()
		case "ops":
			g.addrs.Ops = s.ln.Addr().String()
		case "admin":
			g.addrs.Admin = s.ln.Addr().String()
		}
	}
	g.addrMu.Unlock()
	close(g.bound)
	g.logger.Info("gateway started", "http", g.addrs.HTTP, "ops", g.addrs.Ops, "admin", g.addrs.Admin,
		"upstreams", len(g.snapshot()), "keys", len(cfg.Keys), "allow_anonymous", cfg.AllowAnonymous)

	var wg sync.WaitGroup
	errc := make(chan error, len(servers)+2)
	for _, s := range servers {
		wg.Go(func() {
			if err := s.serve(ctx, s.ln); err != nil {
				errc <- fmt.Errorf("gateway: %s server: %w", s.name, err)
				cancel()
			}
		})
	}
	wg.Go(func() { g.pollLoop(ctx) })
	wg.Go(func() { g.alertLoop(ctx) })
	if cfg.Membership.Enabled() {
		wg.Go(func() { g.membershipLoop(ctx) })
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// pollLoop runs a health round every poll interval (re-read each round, so
// a reload applies) until ctx ends.
func (g *Gateway) pollLoop(ctx context.Context) {
	for {
		g.pollOnce(ctx, time.Now())
		g.filters.prune(time.Now().Add(-5 * time.Minute))
		g.limiter.prune(time.Now().Add(-10 * time.Minute))
		select {
		case <-ctx.Done():
			return
		case <-time.After(g.rt.Load().cfg.Health.PollInterval.Std()):
		}
	}
}

// pollOnce polls every upstream concurrently, judges the samples with the
// policy at time now and publishes the verdicts.
func (g *Gateway) pollOnce(ctx context.Context, now time.Time) {
	rt := g.rt.Load()
	ups := g.snapshot()
	samples := make([]Sample, len(ups))
	var wg sync.WaitGroup
	for i, u := range ups {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, rt.cfg.Health.PollTimeout.Std())
			defer cancel()
			samples[i] = u.poll(pctx)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}

	g.pollMu.Lock()
	defer g.pollMu.Unlock()
	prev := make([]Health, len(ups))
	for i, u := range ups {
		prev[i] = g.health[u.cfg.Name]
	}
	next, head, chainID, changes := rt.policy.Evaluate(prev, samples, now)
	live := map[*upstream]bool{}
	for _, u := range g.snapshot() {
		live[u] = true
	}
	health := make(map[string]Health, len(ups))
	healthy := 0
	m := g.metrics
	for i, u := range ups {
		h := next[i]
		hc := h
		u.health.Store(&hc)
		if samples[i].OK {
			u.head.Store(samples[i].Head)
		}
		u.healthy.Store(h.Healthy)
		if !live[u] {
			continue // removed or replaced during the round: its state ends here
		}
		health[u.cfg.Name] = h
		if h.Healthy && u.cfg.Role == RolePrimary && u.routable() {
			healthy++
		}
		m.UpstreamHead.WithLabelValues(u.cfg.Name).Set(float64(u.head.Load()))
		m.UpstreamLag.WithLabelValues(u.cfg.Name).Set(float64(h.Lag))
		m.UpstreamHealthy.WithLabelValues(u.cfg.Name).Set(boolFloat(h.Healthy))
		m.UpstreamInFlight.WithLabelValues(u.cfg.Name).Set(float64(u.inFlight.Load()))
	}
	g.health = health
	m.HealthyCount.Set(float64(healthy))
	m.Head.Set(float64(head))
	m.FallbackActive.Set(boolFloat(healthy == 0))

	for _, c := range changes {
		u, was := ups[c.Index], prev[c.Index]
		if c.Healthy {
			g.logger.Info("upstream healthy", "upstream", u.cfg.Name, "head", next[c.Index].Head, "corroborated_head", head, "chain_id", chainID)
		} else {
			g.logger.Warn("upstream unhealthy", "upstream", u.cfg.Name, "reason", c.Reason, "corroborated_head", head)
			if was.Known {
				m.Failovers.Inc()
			}
		}
		if was.Known || !c.Healthy {
			state := "unhealthy: " + c.Reason
			if c.Healthy {
				state = "healthy again"
			}
			g.alert(fmt.Sprintf("hansa gateway: upstream %s is %s", u.cfg.Name, state))
		}
	}
	low := healthy < rt.cfg.Alerts.MinHealthy
	if low && !g.lowWas {
		g.alert(fmt.Sprintf("hansa gateway: %d healthy upstreams, below the threshold of %d", healthy, rt.cfg.Alerts.MinHealthy))
	}
	g.lowWas = low
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// alert queues a webhook message; it never blocks (a full queue drops it).
func (g *Gateway) alert(text string) {
	if g.rt.Load().cfg.Alerts.WebhookURL == "" {
		return
	}
	select {
	case g.alerts <- text:
	default:
		g.metrics.Alerts.WithLabelValues("dropped").Inc()
		g.logger.Warn("alert queue full; alert dropped", "text", text)
	}
}

// alertLoop posts queued alerts to the webhook until ctx ends.
func (g *Gateway) alertLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case text := <-g.alerts:
			url := g.rt.Load().cfg.Alerts.WebhookURL
			if url == "" {
				continue
			}
			if err := g.postAlert(ctx, url, text); err != nil {
				g.metrics.Alerts.WithLabelValues("failed").Inc()
				g.logger.Warn("alert webhook failed", "err", err)
				continue
			}
			g.metrics.Alerts.WithLabelValues("sent").Inc()
		}
	}
}

func (g *Gateway) postAlert(ctx context.Context, url, text string) error {
	return telemetry.PostWebhook(ctx, g.client, url, text)
}
