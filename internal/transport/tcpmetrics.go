package transport

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a Raft message is dropped (the reason label of
// hansa_transport_messages_dropped_total).
const (
	dropQueueFull   = "queue_full"   // the peer's outbound queue was full
	dropBlocked     = "blocked"      // fault injection (Block) cut the link
	dropUnknownPeer = "unknown_peer" // addressed to a member not in the peer set
	dropTooLarge    = "too_large"    // larger than MaxFrameBytes
	dropEncode      = "encode"       // could not be encoded
	dropSendFailed  = "send_failed"  // its batch request failed
	dropStopped     = "stopped"      // the transport stopped or the peer was removed (either side)
	dropReceiveFull = "receive_full" // received, but the Receive channel stayed full
)

// tcpMetrics are the TCP transport's Prometheus metrics. The peer label is
// the member's decimal ID.
//
//	hansa_transport_messages_sent_total{peer}            Raft messages delivered to peer (acknowledged batches)
//	hansa_transport_messages_received_total{peer}        Raft messages from peer handed to Receive
//	hansa_transport_messages_dropped_total{peer,reason}  Raft messages to peer dropped (from peer, for receive_full and stopped)
//	hansa_transport_bytes_sent_total{peer}               bytes of acknowledged batch bodies sent to peer
//	hansa_transport_send_failures_total{peer}            failed batch requests to peer
//	hansa_transport_garbage_total                        malformed or misaddressed requests from authenticated peers
//	hansa_transport_auth_failures_total                  connections and requests refused because the peer is not a member
//	hansa_transport_peer_reachable{peer}                 1 if the last batch request to peer succeeded, else 0
//	hansa_transport_calls_total{method,result}           calls made, by result: ok, remote_error, failed
type tcpMetrics struct {
	sent         *prometheus.CounterVec
	received     *prometheus.CounterVec
	dropped      *prometheus.CounterVec
	bytesSent    *prometheus.CounterVec
	sendFailures *prometheus.CounterVec
	garbage      prometheus.Counter
	authFailures prometheus.Counter
	reachable    *prometheus.GaugeVec
	calls        *prometheus.CounterVec
}

// newTCPMetrics registers the metrics on reg (a private registry if nil).
// Metrics already registered by an earlier transport on the same registry,
// as when a node restarts in one process, are shared.
func newTCPMetrics(reg prometheus.Registerer) (*tcpMetrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &tcpMetrics{
		sent:     counterVec("hansa_transport_messages_sent_total", "Raft messages delivered to a peer.", "peer"),
		received: counterVec("hansa_transport_messages_received_total", "Raft messages received from a peer.", "peer"),
		dropped: counterVec("hansa_transport_messages_dropped_total",
			"Raft messages dropped, by peer and reason.", "peer", "reason"),
		bytesSent: counterVec("hansa_transport_bytes_sent_total", "Bytes of Raft batches delivered to a peer.", "peer"),
		sendFailures: counterVec("hansa_transport_send_failures_total",
			"Raft batch requests to a peer that failed.", "peer"),
		garbage: prometheus.NewCounter(prometheus.CounterOpts{Name: "hansa_transport_garbage_total",
			Help: "Malformed or misaddressed requests from authenticated peers; each drops the connection."}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "hansa_transport_auth_failures_total",
			Help: "Connections and requests refused because the peer's key is not a member's."}),
		reachable: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hansa_transport_peer_reachable",
			Help: "1 if the last Raft batch request to the peer succeeded, else 0."}, []string{"peer"}),
		calls: counterVec("hansa_transport_calls_total", "Calls made to peers, by method and result.", "method", "result"),
	}
	var err error
	m.sent, err = register(reg, m.sent, err)
	m.received, err = register(reg, m.received, err)
	m.dropped, err = register(reg, m.dropped, err)
	m.bytesSent, err = register(reg, m.bytesSent, err)
	m.sendFailures, err = register(reg, m.sendFailures, err)
	m.garbage, err = register(reg, m.garbage, err)
	m.authFailures, err = register(reg, m.authFailures, err)
	m.reachable, err = register(reg, m.reachable, err)
	m.calls, err = register(reg, m.calls, err)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c on reg unless an earlier error occurred, returning
// the collector already registered under the same description if there is
// one.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, prev error) (C, error) {
	if prev != nil {
		return c, prev
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("register transport metrics: %w", err)
	}
	return c, nil
}
