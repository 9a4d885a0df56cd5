package rpc

import (
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
)

// NetAPI serves the "net" namespace. Hansa nodes are not an Ethereum
// devp2p network, so the peer count is 0 and the node is always listening.
type NetAPI struct {
	b Backend
}

// NewNetAPI returns the net namespace service over b.
func NewNetAPI(b Backend) *NetAPI { return &NetAPI{b: b} }

// Version returns the network id: the chain id as a decimal string
// (net_version).
func (api *NetAPI) Version() string {
	return api.b.ChainConfig().ChainID.String()
}

// Listening reports that the node accepts connections (net_listening).
func (api *NetAPI) Listening() bool { return true }

// PeerCount returns the number of Ethereum peers: 0 (net_peerCount).
func (api *NetAPI) PeerCount() hexutil.Uint { return 0 }

// Web3API serves the "web3" namespace.
type Web3API struct {
	clientVersion string
}

// NewWeb3API returns the web3 namespace service; web3_clientVersion answers
// clientVersion as given (see version.ClientVersion for Hansa's, in geth's
// "Name/vX.Y.Z/os-arch/goversion" format).
func NewWeb3API(clientVersion string) *Web3API {
	return &Web3API{clientVersion: clientVersion}
}

// ClientVersion returns the node's client version string
// (web3_clientVersion).
func (api *Web3API) ClientVersion() string { return api.clientVersion }

// Sha3 returns the Keccak-256 hash of input (web3_sha3).
func (api *Web3API) Sha3(input hexutil.Bytes) hexutil.Bytes {
	return crypto.Keccak256(input)
}
