package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// WebSocket proxying. Calls other than eth_subscribe and eth_unsubscribe
// take the HTTP path (routing, retries, sticky filters). Subscriptions of a
// client connection live on one upstream WebSocket; the gateway hands out
// its own subscription ids, and when the upstream connection dies it
// re-subscribes every live subscription on another upstream under the same
// ids. Notifications sent while no upstream was connected are lost (clients
// of newHeads may see a gap); the subscription itself survives.

// wsUpstreamURL is the WebSocket endpoint of an upstream.
func wsUpstreamURL(c UpstreamConfig) string {
	if c.WSURL != "" {
		return c.WSURL
	}
	if rest, ok := strings.CutPrefix(c.URL, "https://"); ok {
		return "wss://" + rest
	}
	return "ws://" + strings.TrimPrefix(c.URL, "http://")
}

// wsSub is one client subscription.
type wsSub struct {
	params json.RawMessage
	upID   string
}

// wsSession is one client WebSocket connection. mu guards the fields
// below it; cwmu and uwmu serialise writes to the client and upstream
// connections.
type wsSession struct {
	g      *Gateway
	p      *principal
	client *websocket.Conn
	cwmu   sync.Mutex
	uwmu   sync.Mutex
	wg     sync.WaitGroup

	mu      sync.Mutex
	up      *websocket.Conn
	upName  string
	subs    map[string]*wsSub // gateway id → subscription
	byUp    map[string]string // upstream id → gateway id
	pending map[uint64]chan rpcResponse
	nextID  uint64
	closed  bool
}

var wsUpgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	// Keys, not origins, authorise: browsers send keys in the URL path.
	CheckOrigin: func(*http.Request) bool { return true },
}

// serveWS serves an upgraded client connection of principal p from
// address ip until either side closes.
func (g *Gateway) serveWS(base context.Context, conn *websocket.Conn, ip string, p *principal) {
	s := &wsSession{g: g, p: p, client: conn, subs: map[string]*wsSub{}, byUp: map[string]string{},
		pending: map[uint64]chan rpcResponse{}}
	g.sessMu.Lock()
	g.sessions[s] = struct{}{}
	g.sessMu.Unlock()
	ctx, cancel := context.WithCancel(base)
	defer func() {
		g.sessMu.Lock()
		delete(g.sessions, s)
		g.sessMu.Unlock()
		cancel()
		s.mu.Lock()
		s.closed = true
		up := s.up
		s.mu.Unlock()
		if up != nil {
			up.Close()
		}
		conn.Close()
		s.wg.Wait()
	}()
	for {
		rt := g.rt.Load()
		conn.SetReadLimit(rt.cfg.Limits.MaxBodyBytes)
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		calls, batch, perr := parseBody(msg)
		if perr == nil && len(calls) > rt.cfg.Limits.MaxBatch {
			perr = &rpcError{Code: CodeInvalidRequest, Message: fmt.Sprintf("batch too large: %d calls, limit %d", len(calls), rt.cfg.Limits.MaxBatch)}
		}
		if perr == nil {
			now := time.Now()
			if ok, wait := g.limiter.allow("ip:"+ip, now, len(calls), rt.cfg.Limits.IPRate, rt.cfg.Limits.IPBurst); !ok {
				perr = rateLimited("client IP", wait)
			} else if ok, wait := g.limiter.allow("key:"+p.name, now, len(calls), p.rate, p.burst); !ok {
				perr = rateLimited("API key", wait)
			}
		}
		if perr != nil {
			s.writeClient(encodeError(nil, perr))
			continue
		}
		answers := make([][]byte, len(calls))
		for i, raw := range calls {
			answers[i] = s.handle(ctx, rt, raw)
		}
		if !batch {
			s.writeClient(answers[0])
			continue
		}
		s.writeClient(append(append([]byte("["), joinJSON(answers)...), ']'))
	}
}

// moveSubscriptions closes the upstream WebSocket of every client session
// connected to the upstream named name; each session then moves its
// subscriptions to another upstream, as after a failure. It returns how
// many sessions were moved.
func (g *Gateway) moveSubscriptions(name string) int {
	g.sessMu.Lock()
	sessions := make([]*wsSession, 0, len(g.sessions))
	for s := range g.sessions {
		sessions = append(sessions, s)
	}
	g.sessMu.Unlock()
	moved := 0
	for _, s := range sessions {
		s.mu.Lock()
		conn := s.up
		if s.upName != name {
			conn = nil
		}
		s.mu.Unlock()
		if conn != nil {
			conn.Close() // readUpstream sees the failure and resubscribes
			moved++
		}
	}
	return moved
}

func joinJSON(parts [][]byte) []byte {
	var out []byte
	for i, a := range parts {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, a...)
	}
	return out
}

func (s *wsSession) writeClient(b []byte) {
	s.cwmu.Lock()
	defer s.cwmu.Unlock()
	_ = s.client.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_ = s.client.WriteMessage(websocket.TextMessage, b)
}

// handle answers one call of a client message.
func (s *wsSession) handle(ctx context.Context, rt *runtime, raw json.RawMessage) []byte {
	req, derr := decodeCall(raw)
	if derr != nil || (req.Method != "eth_subscribe" && req.Method != "eth_unsubscribe") {
		return s.g.handleCall(ctx, rt, s.p, raw)
	}
	if !s.p.allows(req.Method) {
		s.g.metrics.Requests.WithLabelValues(req.Method, "denied", s.p.name).Inc()
		return encodeError(req.ID, &rpcError{Code: CodeMethodDenied, Message: fmt.Sprintf("method %s is not allowed for this key", req.Method)})
	}
	var out []byte
	var err error
	if req.Method == "eth_subscribe" {
		out, err = s.subscribe(ctx, &req)
	} else {
		out, err = s.unsubscribe(ctx, &req)
	}
	status := "ok"
	if err != nil {
		status = "unavailable"
		var re *rpcError
		if !errors.As(err, &re) {
			re = &rpcError{Code: CodeUnavailable, Message: "upstream unavailable: " + publicReason(err)}
		}
		out = encodeError(req.ID, re)
	}
	s.g.metrics.Requests.WithLabelValues(req.Method, status, s.p.name).Inc()
	return out
}

func (s *wsSession) subscribe(ctx context.Context, req *rpcRequest) ([]byte, error) {
	if err := s.connect(ctx, ""); err != nil {
		return nil, err
	}
	resp, err := s.upCall(ctx, "eth_subscribe", req.Params)
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return encodeError(req.ID, resp.Error), nil
	}
	var upID string
	if err := json.Unmarshal(resp.Result, &upID); err != nil {
		return nil, &rpcError{Code: CodeInternal, Message: "upstream returned a malformed subscription id"}
	}
	id := randomID()
	s.mu.Lock()
	s.subs[id] = &wsSub{params: req.Params, upID: upID}
	s.byUp[upID] = id
	s.mu.Unlock()
	return encodeResult(req.ID, json.RawMessage(strconv.Quote(id))), nil
}

func (s *wsSession) unsubscribe(ctx context.Context, req *rpcRequest) ([]byte, error) {
	id, err := firstParamString(req.Params)
	if err != nil {
		return nil, &rpcError{Code: CodeInvalidParams, Message: "invalid params: " + err.Error()}
	}
	s.mu.Lock()
	sub := s.subs[id]
	if sub != nil {
		delete(s.subs, id)
		delete(s.byUp, sub.upID)
	}
	s.mu.Unlock()
	if sub == nil {
		return encodeResult(req.ID, json.RawMessage("false")), nil
	}
	params, _ := json.Marshal([]string{sub.upID})
	_, _ = s.upCall(ctx, "eth_unsubscribe", params) // the upstream may be gone; the client's view is what counts
	return encodeResult(req.ID, json.RawMessage("true")), nil
}

// connect makes sure the session has an upstream WebSocket, dialling a
// healthy upstream other than avoid when it has none.
func (s *wsSession) connect(ctx context.Context, avoid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up != nil {
		return nil
	}
	if s.closed {
		return context.Canceled
	}
	ups := s.g.snapshot()
	cands := make([]Candidate, len(ups))
	tried := make([]bool, len(ups))
	for i, u := range ups {
		cands[i] = u.candidate()
		tried[i] = u.cfg.Name == avoid
	}
	err := error(ErrNoUpstream)
	for range ups {
		i, _, perr := Pick(cands, 0, tried, s.g.seq.Add(1))
		if perr != nil {
			break
		}
		tried[i] = true
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var conn *websocket.Conn
		conn, _, err = websocket.DefaultDialer.DialContext(dctx, wsUpstreamURL(ups[i].cfg), nil)
		cancel()
		if err != nil {
			s.g.logger.Debug("upstream websocket dial failed", "upstream", ups[i].cfg.Name, "err", err)
			continue
		}
		conn.SetReadLimit(maxUpstreamResponse)
		s.up, s.upName = conn, ups[i].cfg.Name
		s.wg.Go(func() { s.readUpstream(ctx, conn) })
		return nil
	}
	return fmt.Errorf("%w: %v", errUpstream, err)
}

// upCall sends one call on the upstream WebSocket and waits for its answer.
func (s *wsSession) upCall(ctx context.Context, method string, params json.RawMessage) (*rpcResponse, error) {
	s.mu.Lock()
	conn := s.up
	if conn == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: no upstream connection", errUpstream)
	}
	s.nextID++
	id := s.nextID
	ch := make(chan rpcResponse, 1)
	s.pending[id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
	}()
	s.uwmu.Lock()
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	err := conn.WriteMessage(websocket.TextMessage, encodeCall(json.RawMessage(strconv.FormatUint(id, 10)), method, params))
	s.uwmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUpstream, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.g.rt.Load().cfg.Limits.timeoutFor(method))
	defer cancel()
	select {
	case resp, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%w: connection lost", errUpstream)
		}
		return &resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// upMessage is any message an upstream WebSocket sends.
type upMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		Subscription string          `json:"subscription"`
		Result       json.RawMessage `json:"result"`
	} `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *rpcError       `json:"error"`
}

// readUpstream relays one upstream connection's messages until it fails,
// then moves the subscriptions to another upstream.
func (s *wsSession) readUpstream(ctx context.Context, conn *websocket.Conn) {
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			break
		}
		var m upMessage
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		if m.Method == "eth_subscription" {
			s.mu.Lock()
			id, ok := s.byUp[m.Params.Subscription]
			s.mu.Unlock()
			if ok {
				s.writeClient(notification(id, m.Params.Result))
			}
			continue
		}
		n, err := strconv.ParseUint(string(m.ID), 10, 64)
		if err != nil {
			continue
		}
		s.mu.Lock()
		ch := s.pending[n]
		delete(s.pending, n)
		s.mu.Unlock()
		if ch != nil {
			ch <- rpcResponse{ID: m.ID, Result: m.Result, Error: m.Error}
		}
	}
	conn.Close()
	s.mu.Lock()
	dead := s.upName
	if s.up == conn {
		s.up = nil
	}
	for id, ch := range s.pending {
		close(ch)
		delete(s.pending, id)
	}
	closed := s.closed
	s.mu.Unlock()
	if closed || ctx.Err() != nil {
		return
	}
	s.g.logger.Info("upstream websocket lost; moving subscriptions", "upstream", dead)
	s.resubscribe(ctx, dead)
}

// resubscribe re-creates every live subscription on another upstream,
// retrying until it succeeds or the client leaves.
func (s *wsSession) resubscribe(ctx context.Context, dead string) {
	for attempt := 0; ; attempt++ {
		avoid := dead
		if attempt > 0 {
			avoid = "" // the dead one may have come back
		}
		if err := s.connect(ctx, avoid); err == nil && s.moveSubs(ctx) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// moveSubs subscribes each live subscription again on the current
// upstream connection; false if the connection failed meanwhile.
func (s *wsSession) moveSubs(ctx context.Context) bool {
	s.mu.Lock()
	ids := make([]string, 0, len(s.subs))
	for id := range s.subs {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		s.mu.Lock()
		sub := s.subs[id]
		s.mu.Unlock()
		if sub == nil {
			continue // unsubscribed meanwhile
		}
		resp, err := s.upCall(ctx, "eth_subscribe", sub.params)
		if err != nil {
			return false
		}
		var upID string
		if resp.Error != nil || json.Unmarshal(resp.Result, &upID) != nil {
			s.g.logger.Warn("subscription could not be moved", "err", resp.Error)
			continue
		}
		s.mu.Lock()
		if cur := s.subs[id]; cur != nil {
			delete(s.byUp, cur.upID)
			cur.upID = upID
			s.byUp[upID] = id
		}
		s.mu.Unlock()
	}
	return true
}

func notification(id string, result json.RawMessage) []byte {
	b := make([]byte, 0, len(result)+len(id)+96)
	b = append(b, `{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":`...)
	b = strconv.AppendQuote(b, id)
	b = append(b, `,"result":`...)
	b = append(b, result...)
	return append(b, "}}"...)
}
