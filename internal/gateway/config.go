package gateway

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/ethereum/go-ethereum/common"
)

// Duration is a time.Duration that reads and writes TOML as a string such
// as "1s" or "250ms".
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Role says when an upstream receives traffic.
type Role string

// Upstream roles.
const (
	// RolePrimary upstreams serve traffic while they are healthy.
	RolePrimary Role = "primary"
	// RoleFallback upstreams serve traffic only while no primary is healthy.
	RoleFallback Role = "fallback"
)

// UpstreamConfig is one Ethereum JSON-RPC node behind the gateway.
type UpstreamConfig struct {
	// Name identifies the upstream in metrics, logs and the admin API.
	Name string `toml:"name" json:"name"`
	// URL is the node's JSON-RPC HTTP endpoint (http:// or https://).
	URL string `toml:"url" json:"url"`
	// WSURL is the node's WebSocket endpoint for subscriptions (default: URL
	// with ws:// or wss://).
	WSURL string `toml:"ws_url" json:"ws_url,omitempty"`
	// Role is "primary" (default) or "fallback".
	Role Role `toml:"role" json:"role"`
	// Labels are free-form operator tags (region, provider, ...).
	Labels map[string]string `toml:"labels" json:"labels,omitempty"`
	// BatchMax, when 2 or more, turns batching on: calls that find
	// BatchSlots requests already in flight to this upstream are sent
	// together as JSON-RPC batches of at most BatchMax calls (no delay is
	// ever added). The upstream must accept batches that large (geth: 1000).
	BatchMax int `toml:"batch_max" json:"batch_max,omitempty"`
	// BatchSlots bounds the requests in flight to the upstream while
	// batching is on (default 8).
	BatchSlots int `toml:"batch_slots" json:"batch_slots,omitempty"`
}

// Validate reports the first problem with the upstream's definition.
func (u *UpstreamConfig) Validate() error {
	if u.Name == "" {
		return errors.New("upstream without a name")
	}
	if strings.ContainsAny(u.Name, "/ \t\n") {
		return fmt.Errorf("upstream %q: name must not contain '/' or spaces", u.Name)
	}
	p, err := url.Parse(u.URL)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("upstream %q: url %q is not an http(s) URL", u.Name, u.URL)
	}
	if u.WSURL != "" {
		if p, err := url.Parse(u.WSURL); err != nil || (p.Scheme != "ws" && p.Scheme != "wss") || p.Host == "" {
			return fmt.Errorf("upstream %q: ws_url %q is not a ws(s) URL", u.Name, u.WSURL)
		}
	}
	switch u.Role {
	case "":
		u.Role = RolePrimary
	case RolePrimary, RoleFallback:
	default:
		return fmt.Errorf("upstream %q: role %q (want primary or fallback)", u.Name, u.Role)
	}
	if u.BatchMax < 0 || u.BatchMax > 1000 || u.BatchSlots < 0 {
		return fmt.Errorf("upstream %q: batch_max must be 0..1000 and batch_slots not negative", u.Name)
	}
	if u.BatchMax >= 2 && u.BatchSlots == 0 {
		u.BatchSlots = 8
	}
	return nil
}

// KeyConfig is one API key and what it may do. The same shape describes
// anonymous access (without Key).
type KeyConfig struct {
	// Name labels the key in metrics and logs (the key itself is never logged).
	Name string `toml:"name"`
	// Key is the secret the client sends in the X-API-Key header or as the
	// URL path /v1/KEY.
	Key string `toml:"key"`
	// Methods is the method allowlist: exact names, namespace wildcards such
	// as "eth_*", or "*" for every method. Empty allows nothing.
	Methods []string `toml:"methods"`
	// Contracts, when not empty, restricts eth_sendRawTransaction and
	// eth_call to these target addresses (contract creation is refused).
	Contracts []string `toml:"contracts"`
	// Senders, when not empty, restricts eth_sendRawTransaction to
	// transactions signed by these addresses.
	Senders []string `toml:"senders"`
	// Rate is the sustained calls per second allowed for the key (0: no
	// limit); Burst is the bucket size (default: Rate, at least 1).
	Rate  float64 `toml:"rate"`
	Burst int     `toml:"burst"`
}

func (k *KeyConfig) validate(anonymous bool) error {
	if !anonymous && k.Name == "" {
		return errors.New("key without a name")
	}
	if !anonymous && len(k.Key) < 8 {
		return fmt.Errorf("key %q: secret shorter than 8 characters", k.Name)
	}
	if !anonymous && strings.ContainsAny(k.Key, "/ \t\n") {
		return fmt.Errorf("key %q: secret must not contain '/' or spaces", k.Name)
	}
	for _, m := range k.Methods {
		if m == "" || (strings.Contains(m, "*") && !strings.HasSuffix(m, "*")) || strings.Count(m, "*") > 1 {
			return fmt.Errorf("key %q: method pattern %q (want a name, a prefix ending in *, or *)", k.Name, m)
		}
	}
	for _, list := range [][]string{k.Contracts, k.Senders} {
		for _, a := range list {
			if !common.IsHexAddress(a) {
				return fmt.Errorf("key %q: %q is not an address", k.Name, a)
			}
		}
	}
	if k.Rate < 0 || k.Burst < 0 {
		return fmt.Errorf("key %q: negative rate or burst", k.Name)
	}
	return nil
}

// HealthConfig sets how upstream health is judged; see Policy.
type HealthConfig struct {
	// PollInterval is how often each upstream is polled (chain id, head,
	// syncing).
	PollInterval Duration `toml:"poll_interval"`
	// PollTimeout bounds one poll of one upstream.
	PollTimeout Duration `toml:"poll_timeout"`
	// MaxLag is the largest lag behind the corroborated head still healthy.
	MaxLag uint64 `toml:"max_lag"`
	// MaxAhead is how far above the corroborated head an upstream may claim
	// to be before it is distrusted (default MaxLag).
	MaxAhead uint64 `toml:"max_ahead"`
	// Corroboration is how many upstreams must report a head at least as
	// high before it counts as the chain's head (default 2).
	Corroboration int `toml:"corroboration"`
	// StallTimeout marks an upstream whose head has not moved for this long
	// while the corroborated head is above it.
	StallTimeout Duration `toml:"stall_timeout"`
	// MaxLatency is the slowest poll still healthy.
	MaxLatency Duration `toml:"max_latency"`
	// MaxErrorRate is the largest share of failed forwarded calls since the
	// previous poll still healthy (checked once at least 10 calls were made).
	MaxErrorRate float64 `toml:"max_error_rate"`
	// FallAfter and RiseAfter are the consecutive bad or good polls needed
	// to change state (hysteresis).
	FallAfter int `toml:"fall_after"`
	RiseAfter int `toml:"rise_after"`
}

// AlertConfig sends Slack-compatible webhook alerts.
type AlertConfig struct {
	// WebhookURL receives POSTs of {"text": "..."}; empty disables alerts.
	WebhookURL string `toml:"webhook_url"`
	// MinHealthy alerts when the number of healthy primaries drops below it.
	MinHealthy int `toml:"min_healthy"`
}

// LimitsConfig bounds what a client may send.
type LimitsConfig struct {
	// MaxBodyBytes is the largest request body.
	MaxBodyBytes int64 `toml:"max_body_bytes"`
	// MaxBatch is the largest number of calls in one batch.
	MaxBatch int `toml:"max_batch"`
	// IPRate and IPBurst rate-limit calls per client IP (0: no limit).
	IPRate  float64 `toml:"ip_rate"`
	IPBurst int     `toml:"ip_burst"`
	// Timeout bounds one call forwarded upstream (all attempts together).
	Timeout Duration `toml:"timeout"`
	// MethodTimeouts overrides Timeout per method.
	MethodTimeouts map[string]Duration `toml:"method_timeouts"`
	// Retries is how many other upstreams a failed retryable call is tried on.
	Retries int `toml:"retries"`
	// DirectCalls is how many upstream calls, gateway-wide, may wait for
	// their answer on a blocking socket (one OS thread each) instead of
	// Go's netpoller; the rest use the netpoller. 0 turns this off; at most
	// maxDirectCalls. See ADR 0008.
	DirectCalls int `toml:"direct_calls"`
	// FrontLoops is how many epoll event loops serve the JSON-RPC port
	// (ADR 0009): 0 picks one per two CPUs, -1 serves every connection
	// with fasthttp's goroutines instead. Read at start only.
	FrontLoops int `toml:"front_loops"`
}

// maxFrontLoops bounds limits.front_loops.
const maxFrontLoops = 64

// MembershipConfig takes upstreams from a Hansa cluster's membership: the
// gateway polls membership_status on a node's admin listener and routes to
// members that are up, never to members catching up, down or unknown, and
// drains members that leave (see membership.go). The section is on when
// AdminURLs is not empty.
type MembershipConfig struct {
	// AdminURLs are node admin listeners (http:// or https://, JSON-RPC on
	// POST). Any one answering is enough: the last one that answered is
	// asked first, then the others in order.
	AdminURLs []string `toml:"admin_urls"`
	// Interval is how often membership_status is polled (default 1s).
	Interval Duration `toml:"interval"`
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string `toml:"token"`
	// Role is the role of discovered upstreams (default primary).
	Role Role `toml:"role"`
	// Labels are added to every discovered upstream's labels, besides
	// source=membership and member=<id>.
	Labels map[string]string `toml:"labels"`
	// DrainTimeout bounds how long an upstream that left the membership is
	// kept while calls to it are still in flight (default 30s).
	DrainTimeout Duration `toml:"drain_timeout"`
	// BatchMax and BatchSlots apply to every discovered upstream (see
	// UpstreamConfig).
	BatchMax   int `toml:"batch_max"`
	BatchSlots int `toml:"batch_slots"`
}

// Enabled reports whether upstreams are taken from a cluster's membership.
func (m *MembershipConfig) Enabled() bool { return len(m.AdminURLs) > 0 }

// validate fills in the default role and reports the first problem.
func (m *MembershipConfig) validate() error {
	if !m.Enabled() {
		if m.Token != "" || len(m.Labels) > 0 {
			return errors.New("membership.admin_urls is empty but token or labels are set")
		}
		return nil
	}
	seen := map[string]bool{}
	for _, a := range m.AdminURLs {
		if p, err := url.Parse(a); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("membership.admin_urls: %q is not an http(s) URL", a)
		}
		if seen[a] {
			return fmt.Errorf("membership.admin_urls: %q listed twice", a)
		}
		seen[a] = true
	}
	if m.Interval <= 0 {
		return errors.New("membership.interval must be positive")
	}
	if m.DrainTimeout <= 0 {
		return errors.New("membership.drain_timeout must be positive")
	}
	if m.BatchMax < 0 || m.BatchMax > 1000 || m.BatchSlots < 0 {
		return errors.New("membership: batch_max must be 0..1000 and batch_slots not negative")
	}
	if strings.ContainsFunc(m.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return errors.New("membership.token must not contain spaces or control characters")
	}
	switch m.Role {
	case "":
		m.Role = RolePrimary
	case RolePrimary, RoleFallback:
	default:
		return fmt.Errorf("membership.role %q (want primary or fallback)", m.Role)
	}
	for k := range m.Labels {
		if k == "source" || k == "member" {
			return fmt.Errorf("membership.labels: %q is set by the gateway", k)
		}
	}
	return nil
}

// LogConfig selects the log level and format.
type LogConfig struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
}

// Config is the gateway's configuration: the TOML file, then flag overrides.
// Everything but the listen addresses and the state file can be reloaded.
type Config struct {
	// HTTPAddr serves JSON-RPC over HTTP.
	HTTPAddr string `toml:"http_addr"`
	// OpsAddr serves /metrics, /healthz and /readyz; empty disables it.
	OpsAddr string `toml:"ops_addr"`
	// AdminAddr serves the admin API; empty disables it. Keep it on loopback.
	AdminAddr string `toml:"admin_addr"`
	// AdminToken is the bearer token the admin API requires.
	AdminToken string `toml:"admin_token"`
	// StateFile persists upstreams added through the admin API. Relative to
	// the config file's directory; empty keeps them in memory only.
	StateFile string `toml:"state_file"`
	// ChainID is the chain every upstream must serve (0: learn it from the
	// upstreams, by the same corroboration rule as the head).
	ChainID uint64 `toml:"chain_id"`
	// AllowAnonymous lets requests without a key through, with the rights
	// of Anonymous. Off unless set explicitly.
	AllowAnonymous bool      `toml:"allow_anonymous"`
	Anonymous      KeyConfig `toml:"anonymous"`
	// Keys are the API keys.
	Keys []KeyConfig `toml:"keys"`
	// Upstreams are the nodes from the config file (the admin API and the
	// membership section add more).
	Upstreams []UpstreamConfig `toml:"upstreams"`
	// Membership takes upstreams from a Hansa cluster's membership.
	Membership MembershipConfig `toml:"membership"`

	Health HealthConfig `toml:"health"`
	Limits LimitsConfig `toml:"limits"`
	Alerts AlertConfig  `toml:"alerts"`
	Log    LogConfig    `toml:"log"`
}

// DefaultConfig returns a configuration with every default filled in, no
// upstreams, no keys and anonymous access off.
func DefaultConfig() Config {
	return Config{
		HTTPAddr:  "127.0.0.1:8545",
		OpsAddr:   "127.0.0.1:9546",
		AdminAddr: "127.0.0.1:8555",
		Anonymous: KeyConfig{Name: "anonymous", Methods: []string{"eth_*", "net_*", "web3_*"}},
		Health: HealthConfig{
			PollInterval:  Duration(time.Second),
			PollTimeout:   Duration(2 * time.Second),
			MaxLag:        10,
			Corroboration: 2,
			StallTimeout:  Duration(30 * time.Second),
			MaxLatency:    Duration(2 * time.Second),
			MaxErrorRate:  0.5,
			FallAfter:     2,
			RiseAfter:     3,
		},
		Limits: LimitsConfig{
			MaxBodyBytes: 1 << 20,
			MaxBatch:     100,
			Timeout:      Duration(10 * time.Second),
			Retries:      2,
			DirectCalls:  1,
		},
		Membership: MembershipConfig{
			Interval:     Duration(time.Second),
			Role:         RolePrimary,
			DrainTimeout: Duration(30 * time.Second),
		},
		Log: LogConfig{Level: "info", Format: "text"},
	}
}

// LoadConfig reads a TOML file over the defaults. Unknown keys are errors; a
// relative StateFile is resolved against the file's directory.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		return cfg, fmt.Errorf("config %s: unknown keys %v", path, undecoded)
	}
	if cfg.StateFile != "" && !filepath.IsAbs(cfg.StateFile) {
		cfg.StateFile = filepath.Join(filepath.Dir(path), cfg.StateFile)
	}
	return cfg, nil
}

// Validate fills in derived defaults and reports the first problem that
// would stop the gateway from starting.
func (c *Config) Validate() error {
	if c.HTTPAddr == "" {
		return errors.New("gateway: http_addr is empty")
	}
	if c.AdminAddr != "" && len(c.AdminToken) < 16 {
		return errors.New("gateway: admin_addr is set but admin_token is shorter than 16 characters")
	}
	h := &c.Health
	if h.PollInterval <= 0 || h.PollTimeout <= 0 || h.StallTimeout <= 0 || h.MaxLatency <= 0 {
		return errors.New("gateway: health intervals and timeouts must be positive")
	}
	if h.MaxAhead == 0 {
		h.MaxAhead = h.MaxLag
	}
	if h.Corroboration < 1 {
		return errors.New("gateway: health.corroboration must be at least 1")
	}
	if h.FallAfter < 1 || h.RiseAfter < 1 {
		return errors.New("gateway: health.fall_after and rise_after must be at least 1")
	}
	if h.MaxErrorRate <= 0 || h.MaxErrorRate > 1 {
		return errors.New("gateway: health.max_error_rate must be in (0, 1]")
	}
	l := &c.Limits
	if l.MaxBodyBytes <= 0 || l.MaxBatch <= 0 || l.Timeout <= 0 || l.Retries < 0 || l.IPRate < 0 || l.IPBurst < 0 {
		return errors.New("gateway: limits must be positive")
	}
	if l.DirectCalls < 0 || l.DirectCalls > maxDirectCalls {
		return fmt.Errorf("gateway: limits.direct_calls must be between 0 and %d", maxDirectCalls)
	}
	if l.FrontLoops < -1 || l.FrontLoops > maxFrontLoops {
		return fmt.Errorf("gateway: limits.front_loops must be between -1 and %d", maxFrontLoops)
	}
	for m, d := range l.MethodTimeouts {
		if d <= 0 {
			return fmt.Errorf("gateway: limits.method_timeouts.%s must be positive", m)
		}
	}
	names := map[string]bool{}
	for i := range c.Upstreams {
		if err := c.Upstreams[i].Validate(); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		if names[c.Upstreams[i].Name] {
			return fmt.Errorf("gateway: upstream %q defined twice", c.Upstreams[i].Name)
		}
		names[c.Upstreams[i].Name] = true
	}
	secrets, keyNames := map[string]bool{}, map[string]bool{}
	for i := range c.Keys {
		k := &c.Keys[i]
		if err := k.validate(false); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		if secrets[k.Key] || keyNames[k.Name] {
			return fmt.Errorf("gateway: key %q: name or secret used twice", k.Name)
		}
		secrets[k.Key], keyNames[k.Name] = true, true
	}
	if c.Anonymous.Name == "" {
		c.Anonymous.Name = "anonymous"
	}
	if err := c.Anonymous.validate(true); err != nil {
		return fmt.Errorf("gateway: anonymous: %w", err)
	}
	if c.Alerts.WebhookURL != "" {
		if p, err := url.Parse(c.Alerts.WebhookURL); err != nil || (p.Scheme != "http" && p.Scheme != "https") {
			return fmt.Errorf("gateway: alerts.webhook_url %q is not an http(s) URL", c.Alerts.WebhookURL)
		}
	}
	if c.Alerts.MinHealthy < 0 {
		return errors.New("gateway: alerts.min_healthy is negative")
	}
	if err := c.Membership.validate(); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return nil
}

// timeoutFor returns the forwarding deadline of method.
func (l *LimitsConfig) timeoutFor(method string) time.Duration {
	if d, ok := l.MethodTimeouts[method]; ok {
		return d.Std()
	}
	return l.Timeout.Std()
}
