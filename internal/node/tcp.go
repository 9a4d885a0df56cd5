package node

import (
	"net"

	"github.com/ethereum/go-ethereum/common"

	"github.com/hansa-chain/hansa/internal/transport"
)

type peer = transport.Peer

// newTCP builds the mutual-TLS transport on cluster.listen_addr.
func (n *Node) newTCP(genesis common.Hash, peers []peer, ln *net.TCPListener) (*transport.TCP, error) {
	tc := transport.DefaultTCPConfig()
	tc.ID, tc.Key, tc.Genesis, tc.ListenAddr, tc.Peers, tc.Listener = n.id, n.key, genesis, n.cfg.Cluster.ListenAddr, peers, ln
	return transport.NewTCP(tc, n.logger, n.reg)
}
