package node

import (
	"net/http"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/hansa-chain/hansa/internal/version"
)

// adminAPI is the "admin" namespace, served only on the admin listener.
type adminAPI struct{ n *Node }

// NodeInfo describes this node.
type NodeInfo struct {
	ID       uint64         `json:"id"`
	Address  common.Address `json:"address"`
	Version  string         `json:"version"`
	ChainID  hexutil.Uint64 `json:"chainId"`
	Genesis  common.Hash    `json:"genesis"`
	Head     common.Hash    `json:"head"`
	Height   hexutil.Uint64 `json:"height"`
	Leader   uint64         `json:"leader"`
	Diverged bool           `json:"diverged"`
}

// NodeInfo returns this node's identity and chain position.
func (a *adminAPI) NodeInfo() NodeInfo {
	head := a.n.head.Load()
	st := a.n.engine.Status()
	return NodeInfo{
		ID:       a.n.id,
		Address:  a.n.address,
		Version:  version.ClientVersion(),
		ChainID:  hexutil.Uint64(a.n.genesis.ChainID),
		Genesis:  a.n.db.HeaderByNumber(0).Hash(),
		Head:     head.Hash(),
		Height:   hexutil.Uint64(head.Number.Uint64()),
		Leader:   st.LeaderID,
		Diverged: a.n.diverged.Load(),
	}
}

func newAdminHandler(n *Node) (http.Handler, error) {
	srv := gethrpc.NewServer()
	if err := srv.RegisterName("admin", &adminAPI{n: n}); err != nil {
		return nil, err
	}
	return srv, nil
}
