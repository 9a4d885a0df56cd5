//go:build !hansa_tcp

package node

import (
	"errors"

	"github.com/ethereum/go-ethereum/common"

	"github.com/hansa-chain/hansa/internal/transport"
)

type peer struct {
	ID      uint64
	Address common.Address
	Addr    string
}

func (n *Node) newTCP(genesis common.Hash, peers []peer) (transport.Transport, error) {
	return nil, errors.New("tcp transport not built")
}
