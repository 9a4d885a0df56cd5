package transport

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// Open methods are served to any node that proves a node key for this chain
// (the certificate binding of tcpauth.go), member or not: they are how a
// node that is not yet a member asks to join, fetches the genesis, or takes
// part in forming a new cluster. The handler sees the caller's node address
// and decides itself whom to serve.
//
//	POST /raft/v1/open/{method}  body: the request (at most MaxOpenBytes)
const openPrefix = "/raft/v1/open/"

// MaxOpenBytes bounds an open request; responses may be as large as a frame.
const MaxOpenBytes = 1 << 20

// OpenHandler serves one open call from the node whose key is from.
type OpenHandler func(ctx context.Context, from common.Address, req []byte) ([]byte, error)

// openMux holds open handlers; it is shared by the TCP transport and the
// stand-alone OpenServer.
type openMux struct {
	mu       sync.RWMutex
	handlers map[string]OpenHandler
}

func (m *openMux) handle(method string, h OpenHandler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.handlers == nil {
		m.handlers = map[string]OpenHandler{}
	}
	if h == nil {
		delete(m.handlers, method)
		return
	}
	m.handlers[method] = h
}

// serve answers an open request from signer.
func (m *openMux) serve(w http.ResponseWriter, r *http.Request, signer common.Address, logger *slog.Logger) {
	method := strings.TrimPrefix(r.URL.Path, openPrefix)
	m.mu.RLock()
	h := m.handlers[method]
	m.mu.RUnlock()
	if r.Method != http.MethodPost || h == nil {
		remoteError(w, http.StatusNotFound, ErrUnknownMethod.Error())
		return
	}
	req, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxOpenBytes))
	if err != nil {
		logger.Debug("open request refused", "from", signer, "method", method, "err", err)
		refuse(w, http.StatusRequestEntityTooLarge, "open request too large or cut short")
		return
	}
	resp, err := h(r.Context(), signer, req)
	if err != nil {
		remoteError(w, http.StatusForbidden, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp)
}

// HandleOpen registers h for open calls to method (nil removes it).
func (t *TCP) HandleOpen(method string, h OpenHandler) { t.open.handle(method, h) }

// OpenServer serves open methods on a listener before the node has a
// transport of its own (while a new cluster forms). Shutdown gives the
// listener back, still open, for the transport to take over.
type OpenServer struct {
	mux    openMux
	srv    *http.Server
	ln     *pausableListener
	logger *slog.Logger
	done   chan error
}

// NewOpenServer prepares an open server on ln for the chain with the given
// genesis hash, presenting a certificate bound to key.
func NewOpenServer(ln *net.TCPListener, key *ecdsa.PrivateKey, genesis common.Hash, logger *slog.Logger) (*OpenServer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cert, err := newIdentity(key, genesis, time.Now())
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	s := &OpenServer{ln: &pausableListener{TCPListener: ln}, logger: logger, done: make(chan error, 1)}
	s.srv = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			signer, err := requestSigner(r, genesis)
			if err != nil || !strings.HasPrefix(r.URL.Path, openPrefix) {
				refuse(w, http.StatusForbidden, "not available before this node is a member")
				return
			}
			s.mux.serve(w, r, signer, logger)
		}),
	}
	tlsLn := tls.NewListener(s.ln, tlsConfig(cert, true, func(certs []*x509.Certificate) error {
		if len(certs) != 1 {
			return fmt.Errorf("peer presented %d certificates, want 1", len(certs))
		}
		_, err := certSigner(certs[0], genesis, time.Now())
		return err
	}))
	go func() { s.done <- s.srv.Serve(tlsLn) }()
	return s, nil
}

// Handle registers h for open calls to method.
func (s *OpenServer) Handle(method string, h OpenHandler) { s.mux.handle(method, h) }

// Shutdown stops serving and returns the listener, open, with no deadline.
func (s *OpenServer) Shutdown(ctx context.Context) (*net.TCPListener, error) {
	err := s.srv.Shutdown(ctx)
	<-s.done
	return s.ln.TCPListener, errors.Join(err, s.ln.SetDeadline(time.Time{}))
}

// pausableListener turns Close into "stop accepting" so that an
// http.Server can be shut down without closing the socket.
type pausableListener struct{ *net.TCPListener }

func (l *pausableListener) Close() error { return l.SetDeadline(time.Unix(1, 0)) }

// requestSigner returns the node address bound to the request's client
// certificate.
func requestSigner(r *http.Request, genesis common.Hash) (common.Address, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) != 1 {
		return common.Address{}, errors.New("not authenticated")
	}
	return certSigner(r.TLS.PeerCertificates[0], genesis, time.Now())
}

// OpenClient calls open methods of nodes that need not know this one.
type OpenClient struct {
	genesis common.Hash
	client  *http.Client
	limit   int
}

// NewOpenClient returns a client presenting a certificate bound to key for
// the chain with the given genesis hash. It accepts any server that proves
// a node key for that chain; Call reports which.
func NewOpenClient(key *ecdsa.PrivateKey, genesis common.Hash, dialTimeout time.Duration) (*OpenClient, error) {
	cert, err := newIdentity(key, genesis, time.Now())
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	verify := func(certs []*x509.Certificate) error {
		if len(certs) != 1 {
			return fmt.Errorf("server presented %d certificates, want 1", len(certs))
		}
		_, err := certSigner(certs[0], genesis, time.Now())
		return err
	}
	dialer := &net.Dialer{Timeout: dialTimeout}
	return &OpenClient{genesis: genesis, limit: DefaultTCPConfig().MaxFrameBytes, client: &http.Client{
		Transport: &http.Transport{
			DialContext:            dialer.DialContext,
			TLSClientConfig:        tlsConfig(cert, false, verify),
			TLSHandshakeTimeout:    dialTimeout,
			TLSNextProto:           map[string]func(string, *tls.Conn) http.RoundTripper{},
			MaxIdleConnsPerHost:    1,
			IdleConnTimeout:        30 * time.Second,
			DisableCompression:     true,
			MaxResponseHeaderBytes: 16 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// Call sends req to the open method of the node listening on addr
// (host:port) and returns its answer and the node address it proved. An
// error its handler returned is a *RemoteError.
func (c *OpenClient) Call(ctx context.Context, addr, method string, req []byte) ([]byte, common.Address, error) {
	if len(req) > MaxOpenBytes {
		return nil, common.Address{}, fmt.Errorf("open call %s: request of %d bytes exceeds %d", method, len(req), MaxOpenBytes)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultCallTimeout)
		defer cancel()
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+openPrefix+url.PathEscape(method), bytes.NewReader(req))
	if err != nil {
		return nil, common.Address{}, fmt.Errorf("open call %s to %s: %w", method, addr, err)
	}
	resp, err := c.client.Do(hreq)
	if err != nil {
		return nil, common.Address{}, fmt.Errorf("open call %s to %s: %w", method, addr, err)
	}
	defer resp.Body.Close()
	var signer common.Address
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) == 1 {
		signer, _ = certSigner(resp.TLS.PeerCertificates[0], c.genesis, time.Now())
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(c.limit)+1))
	switch {
	case err != nil:
		return nil, signer, fmt.Errorf("open call %s to %s: read response: %w", method, addr, err)
	case len(body) > c.limit:
		return nil, signer, fmt.Errorf("open call %s to %s: response too large", method, addr)
	case resp.StatusCode == http.StatusOK:
		return body, signer, nil
	case resp.Header.Get(remoteErrorHeader) != "":
		return nil, signer, &RemoteError{Msg: string(body)}
	default:
		if len(body) > 512 {
			body = body[:512]
		}
		return nil, signer, fmt.Errorf("open call %s to %s: %s: %s", method, addr, resp.Status, bytes.TrimSpace(body))
	}
}

// Close releases idle connections.
func (c *OpenClient) Close() { c.client.CloseIdleConnections() }
