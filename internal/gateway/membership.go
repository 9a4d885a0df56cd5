package gateway

// Upstreams from a Hansa cluster's membership.
//
// With a [membership] section, Run starts the membership runner: every
// membership interval it asks a node's admin listener for membership_status
// (the last admin URL that answered first, then the others in order),
// planMembers turns the answer and what the gateway tracks into the next
// tracked set and a list of events, and applyMembers publishes the set and
// logs the events. planMembers is pure; the runner owns the I/O, the clock
// and the tracked set (guarded by Gateway.memMu).
//
// Rules, per member of the answer:
//   - up and not leaving: its upstream member-<id> exists and takes calls
//     (once the gateway's own health checks pass, like any upstream);
//   - catching-up, down or unknown: no calls; a member not yet added is not
//     added, an added one is excluded (it stays, and is still polled);
//   - leaving, or no longer listed: drained, that is no new calls, calls in
//     flight finish, filters and subscriptions held on it move as on a
//     failure; an unlisted member's upstream is removed once no call to it
//     is in flight, or after the drain timeout;
//   - an rpcUrl (or role, labels) change: the upstream is replaced.
//
// A poll that gets no usable answer changes nothing. An answer that is a
// node's local view (its "source" is "local": it could not ask the leader,
// so every member's health is "unknown" and only its own leaving flag is
// known) is used only when no admin URL gives the leader's view, and then
// changes no member's exclusion or draining except to drain members that
// are leaving or gone.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// sourceMembership is the Source of upstreams taken from the membership.
	sourceMembership = "membership"
	// memberPrefix starts the name of every membership upstream.
	memberPrefix = "member-"
	// maxMembershipAnswer bounds the membership_status answer read.
	maxMembershipAnswer = 4 << 20
	// membershipWarnEvery rate-limits the warning about failing polls.
	membershipWarnEvery = time.Minute
)

// Member health values of membership_status.
const (
	healthUp         = "up"
	healthCatchingUp = "catching-up"
	healthDown       = "down"
	healthUnknown    = "unknown"
)

// membershipStatus is the part of a membership_status answer the gateway
// reads (unknown fields are ignored).
type membershipStatus struct {
	Self    uint64         `json:"self"`
	Leader  uint64         `json:"leader"`
	Term    uint64         `json:"term"`
	Members []memberStatus `json:"members"`
	// Source is "local" when the answering node could not ask the leader
	// ("leader", or absent, otherwise).
	Source string `json:"source"`
}

// memberStatus is one member of a membership_status answer.
type memberStatus struct {
	ID      uint64 `json:"id"`
	Name    string `json:"name"`
	RPCURL  string `json:"rpcUrl"`
	Role    string `json:"role"`
	Health  string `json:"health"`
	Leaving bool   `json:"leaving"`
}

// decodeMembershipStatus reads a JSON-RPC answer to membership_status. An
// answer without members, or with a member id 0 or listed twice, is an
// error: a cluster always has a member, and an empty list must not empty
// the gateway.
func decodeMembershipStatus(body []byte) (*membershipStatus, error) {
	var resp rpcResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("not a JSON-RPC answer: %v", err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("membership_status: %w", resp.Error)
	}
	if len(resp.Result) == 0 || string(resp.Result) == "null" {
		return nil, errors.New("membership_status: no result")
	}
	var st membershipStatus
	if err := json.Unmarshal(resp.Result, &st); err != nil {
		return nil, fmt.Errorf("membership_status: %v", err)
	}
	if len(st.Members) == 0 {
		return nil, errors.New("membership_status lists no members")
	}
	seen := make(map[uint64]bool, len(st.Members))
	for _, m := range st.Members {
		if m.ID == 0 || seen[m.ID] {
			return nil, fmt.Errorf("membership_status: member id %d is zero or listed twice", m.ID)
		}
		seen[m.ID] = true
	}
	return &st, nil
}

// memberHealth maps a reported health to one of the four known values
// (anything else counts as unknown).
func memberHealth(h string) string {
	switch h {
	case healthUp, healthCatchingUp, healthDown:
		return h
	}
	return healthUnknown
}

// memberUpstream is the upstream of a member: named member-<id>, at its
// rpcUrl (WebSocket: the same with ws:// or wss://), with the configured
// role, labels (plus source=membership and member=<id>) and batching.
func memberUpstream(m memberStatus, mc *MembershipConfig) (UpstreamConfig, error) {
	if m.RPCURL == "" {
		return UpstreamConfig{}, errors.New("member advertises no rpc url")
	}
	id := strconv.FormatUint(m.ID, 10)
	labels := make(map[string]string, len(mc.Labels)+2)
	for k, v := range mc.Labels {
		labels[k] = v
	}
	labels["source"], labels["member"] = sourceMembership, id
	c := UpstreamConfig{Name: memberPrefix + id, URL: m.RPCURL, Role: mc.Role, Labels: labels,
		BatchMax: mc.BatchMax, BatchSlots: mc.BatchSlots}
	if err := c.Validate(); err != nil {
		return UpstreamConfig{}, fmt.Errorf("member rpc url %q is not an http(s) URL", m.RPCURL)
	}
	c.WSURL = wsUpstreamURL(c)
	return c, nil
}

// memberState is what the gateway tracks of one member it made an
// upstream for.
type memberState struct {
	Upstream UpstreamConfig
	// Excluded: listed, not leaving, and not up.
	Excluded bool
	// Draining: leaving or no longer listed, since DrainSince.
	Draining   bool
	DrainSince time.Time
}

// memberMode is how a membership upstream may be routed to.
type memberMode struct{ excluded, draining bool }

// memberAction is what planMembers decided for one member.
type memberAction string

// Membership events.
const (
	memberAdd     memberAction = "add"     // new upstream for a member that is up
	memberReplace memberAction = "replace" // rpc url (or role, labels) changed
	memberExclude memberAction = "exclude" // listed but not up: no calls
	memberInclude memberAction = "include" // up again: calls resume
	memberDrain   memberAction = "drain"   // leaving or unlisted: no new calls
	memberUndrain memberAction = "undrain" // listed and not leaving again
	memberRemove  memberAction = "remove"  // unlisted and drained (or timed out)
	memberSkip    memberAction = "skip"    // listed without a usable rpc url
)

// memberEvent is one decision of planMembers.
type memberEvent struct {
	Member   uint64
	Action   memberAction
	Upstream string // upstream name ("" for memberSkip)
	URL      string
	Reason   string
	InFlight int64 // calls in flight (memberDrain, memberRemove)
	// Moved is set on memberReplace when the rpc url changed (not only
	// the role or labels): the old upstream's health and subscriptions do
	// not carry over.
	Moved bool
}

// planMembers decides, from the tracked members prev, a membership_status
// answer st, the calls in flight per upstream name and the time now, the
// next tracked members and the events that lead there (members in the
// answer's order, then unlisted ones by id). It is pure and leaves prev
// unchanged.
func planMembers(prev map[uint64]memberState, st *membershipStatus, mc *MembershipConfig, inFlight map[string]int64, now time.Time) (map[uint64]memberState, []memberEvent) {
	next := make(map[uint64]memberState, len(prev))
	var events []memberEvent
	listed := map[uint64]bool{}
	local := st.Source == "local"
	for _, m := range st.Members {
		want, err := memberUpstream(m, mc)
		if err != nil {
			events = append(events, memberEvent{Member: m.ID, Action: memberSkip, URL: m.RPCURL, Reason: err.Error()})
			continue // if tracked, it is drained below like an unlisted member
		}
		listed[m.ID] = true
		health := memberHealth(m.Health)
		up := health == healthUp
		// A local view knows neither health nor other members' leaving.
		blind := local && health == healthUnknown
		ev := func(a memberAction, reason string) {
			events = append(events, memberEvent{Member: m.ID, Action: a, Upstream: want.Name, URL: want.URL, Reason: reason})
		}
		s, had := prev[m.ID]
		if !had {
			if up && !m.Leaving {
				next[m.ID] = memberState{Upstream: want}
				ev(memberAdd, "member is up")
			}
			continue // not added before it has caught up
		}
		if !sameUpstream(s.Upstream, want) {
			e := memberEvent{Member: m.ID, Action: memberReplace, Upstream: want.Name, URL: want.URL, Reason: "role or labels changed"}
			if s.Upstream.URL != want.URL {
				e.Reason, e.Moved = "rpc url changed from "+s.Upstream.URL, true
			}
			s.Upstream = want
			events = append(events, e)
		}
		switch {
		case m.Leaving:
			if !s.Draining {
				s.Draining, s.DrainSince = true, now
				events = append(events, memberEvent{Member: m.ID, Action: memberDrain, Upstream: want.Name, URL: want.URL,
					Reason: "member is leaving the cluster", InFlight: inFlight[want.Name]})
			}
		case blind:
			// Keep what the last leader's view said.
		default:
			if s.Draining {
				s.Draining, s.DrainSince = false, time.Time{}
				ev(memberUndrain, "member is listed and not leaving")
			}
			if up && s.Excluded {
				s.Excluded = false
				ev(memberInclude, "member is up")
			} else if !up && !s.Excluded {
				s.Excluded = true
				ev(memberExclude, "member health is "+health)
			}
		}
		next[m.ID] = s
	}
	var gone []uint64
	for id := range prev {
		if !listed[id] {
			gone = append(gone, id)
		}
	}
	slices.Sort(gone)
	for _, id := range gone {
		s := prev[id]
		name := s.Upstream.Name
		n := inFlight[name]
		ev := func(a memberAction, reason string) {
			events = append(events, memberEvent{Member: id, Action: a, Upstream: name, URL: s.Upstream.URL, Reason: reason, InFlight: n})
		}
		if !s.Draining {
			s.Draining, s.DrainSince = true, now
			ev(memberDrain, "member is no longer listed with an rpc url")
		}
		switch waited := now.Sub(s.DrainSince); {
		case n == 0:
			ev(memberRemove, "drained: no call in flight")
		case waited >= mc.DrainTimeout.Std():
			ev(memberRemove, fmt.Sprintf("drain timeout %v with %d calls in flight", mc.DrainTimeout.Std(), n))
		default:
			next[id] = s
		}
	}
	return next, events
}

// discovery is the membership runner's state.
type discovery struct {
	tracked  map[uint64]memberState
	lastGood string            // admin URL of the last answer used
	skipped  map[uint64]string // member id → skip reason already warned about
}

func newDiscovery() *discovery {
	return &discovery{tracked: map[uint64]memberState{}, skipped: map[uint64]string{}}
}

// membershipLoop runs a membership round every membership interval (re-read
// each round) until ctx ends. A failed round is logged at once, then at
// most once a minute while failures last.
func (g *Gateway) membershipLoop(ctx context.Context) {
	mc := g.rt.Load().cfg.Membership
	g.logger.Info("membership discovery started", "admin_urls", mc.AdminURLs, "interval", mc.Interval.Std(),
		"role", mc.Role, "drain_timeout", mc.DrainTimeout.Std())
	failures := 0
	var lastWarn time.Time
	for {
		now := time.Now()
		err := g.membershipOnce(ctx, now)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			failures++
			if failures == 1 || now.Sub(lastWarn) >= membershipWarnEvery {
				g.logger.Warn("membership poll failed; keeping the current upstreams", "err", err, "failures", failures)
				lastWarn = now
			}
		case failures > 0:
			g.logger.Info("membership poll answered again", "failures", failures)
			failures = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(g.rt.Load().cfg.Membership.Interval.Std()):
		}
	}
}

// membershipOnce polls membership_status and applies the plan at time now.
// When no admin URL gives a usable answer it changes nothing, counts the
// failure and returns why.
func (g *Gateway) membershipOnce(ctx context.Context, now time.Time) error {
	rt := g.rt.Load()
	mc := rt.cfg.Membership
	g.memMu.Lock()
	defer g.memMu.Unlock()
	st, from, err := g.fetchMembership(ctx, &mc, rt.cfg.Health.PollTimeout.Std(), g.members.lastGood)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err() // shutting down: not a failed poll
		}
		g.metrics.MembershipPolls.WithLabelValues("error").Inc()
		return err
	}
	g.metrics.MembershipPolls.WithLabelValues("ok").Inc()
	g.members.lastGood = from
	counts := map[string]int{healthUp: 0, healthCatchingUp: 0, healthDown: 0, healthUnknown: 0}
	for _, m := range st.Members {
		counts[memberHealth(m.Health)]++
	}
	for h, n := range counts {
		g.metrics.MembershipMembers.WithLabelValues(h).Set(float64(n))
	}
	inFlight := map[string]int64{}
	for _, u := range g.snapshot() {
		if u.source == sourceMembership {
			inFlight[u.cfg.Name] = u.inFlight.Load()
		}
	}
	next, events := planMembers(g.members.tracked, st, &mc, inFlight, now)
	g.applyMembers(next, events)
	g.members.tracked = next
	return nil
}

// applyMembers publishes the tracked members as upstreams, then logs each
// event and acts on it: subscriptions leave a draining upstream or one whose
// rpc url changed, and the health of a removed or moved one is forgotten.
// Callers hold memMu.
func (g *Gateway) applyMembers(next map[uint64]memberState, events []memberEvent) {
	ids := make([]uint64, 0, len(next))
	for id := range next {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	ups := make([]UpstreamConfig, 0, len(ids))
	modes := make(map[string]memberMode, len(ids))
	draining := 0
	for _, id := range ids {
		s := next[id]
		ups = append(ups, s.Upstream)
		modes[s.Upstream.Name] = memberMode{excluded: s.Excluded, draining: s.Draining}
		if s.Draining {
			draining++
		}
	}
	reshape := slices.ContainsFunc(events, func(e memberEvent) bool {
		return e.Action == memberAdd || e.Action == memberReplace || e.Action == memberRemove
	})
	g.upMu.Lock()
	g.memberUps, g.memberMode = ups, modes
	if reshape {
		g.rebuildLocked()
	} else {
		g.applyModesLocked(g.snapshot())
	}
	g.upMu.Unlock()
	g.metrics.DrainingUpstreams.Set(float64(draining))

	skipped := map[uint64]bool{}
	for _, e := range events {
		log := g.logger.With("member", e.Member, "upstream", e.Upstream, "reason", e.Reason)
		switch e.Action {
		case memberAdd:
			log.Info("member upstream added", "url", e.URL)
		case memberReplace:
			moved := 0
			if e.Moved {
				g.forgetHealth(e.Upstream)
				moved = g.moveSubscriptions(e.Upstream)
			}
			log.Info("member upstream replaced", "url", e.URL, "subscriptions_moved", moved)
		case memberExclude:
			log.Info("member upstream excluded")
		case memberInclude:
			log.Info("member upstream included")
		case memberDrain:
			log.Info("member upstream draining", "in_flight", e.InFlight, "subscriptions_moved", g.moveSubscriptions(e.Upstream))
		case memberUndrain:
			log.Info("member upstream no longer draining")
		case memberRemove:
			g.forgetHealth(e.Upstream)
			log.Info("member upstream removed", "in_flight", e.InFlight)
		case memberSkip:
			skipped[e.Member] = true
			if g.members.skipped[e.Member] != e.Reason {
				g.members.skipped[e.Member] = e.Reason
				g.logger.Warn("cluster member skipped", "member", e.Member, "reason", e.Reason)
			}
		}
	}
	for id := range g.members.skipped {
		if !skipped[id] {
			delete(g.members.skipped, id) // warn again if it comes back
		}
	}
}

// applyModesLocked sets the routing flags of the membership upstreams
// among ups from memberMode. Callers hold upMu.
func (g *Gateway) applyModesLocked(ups []*upstream) {
	for _, u := range ups {
		if u.source != sourceMembership {
			continue
		}
		m := g.memberMode[u.cfg.Name]
		u.excluded.Store(m.excluded)
		u.draining.Store(m.draining)
	}
}

// forgetHealth drops the judged health of an upstream name, so that an
// upstream of the same name added later starts afresh.
func (g *Gateway) forgetHealth(name string) {
	g.pollMu.Lock()
	defer g.pollMu.Unlock()
	delete(g.health, name)
}

// fetchMembership asks the admin URLs for membership_status, the last good
// one first, then the others in order, each within timeout. The first
// leader's view wins; a node's local view is used only when no admin URL
// gives a leader's view. It returns the answer and the URL that gave it.
func (g *Gateway) fetchMembership(ctx context.Context, mc *MembershipConfig, timeout time.Duration, lastGood string) (*membershipStatus, string, error) {
	order := make([]string, 0, len(mc.AdminURLs))
	if slices.Contains(mc.AdminURLs, lastGood) {
		order = append(order, lastGood)
	}
	for _, a := range mc.AdminURLs {
		if a != lastGood {
			order = append(order, a)
		}
	}
	var errs []string
	var localView *membershipStatus
	localFrom := ""
	for _, a := range order {
		st, err := g.askMembership(ctx, a, mc.Token, timeout)
		if err != nil {
			errs = append(errs, a+": "+err.Error())
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if st.Source != "local" {
			return st, a, nil
		}
		if localView == nil {
			localView, localFrom = st, a
		}
	}
	if localView != nil {
		return localView, localFrom, nil
	}
	return nil, "", errors.New("no admin url answered: " + strings.Join(errs, "; "))
}

// askMembership posts membership_status to one admin URL.
func (g *Gateway) askMembership(ctx context.Context, adminURL, token string, timeout time.Duration) (*membershipStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, adminURL,
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"membership_status"}`))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which the caller adds
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMembershipAnswer))
	if err != nil {
		return nil, fmt.Errorf("read answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return decodeMembershipStatus(body)
}
