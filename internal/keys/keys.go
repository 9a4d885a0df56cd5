// Package keys creates, stores and derives secp256k1 keys: node keys and
// account keys in files, and the well-known development accounts derived
// from a BIP-39 mnemonic along BIP-44 paths (the ones Hardhat and anvil use).
package keys

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/tyler-smith/go-bip39"
)

// DevMnemonic is the well-known test mnemonic whose accounts development
// tools (Hardhat, anvil, Foundry) fund by default. Never use it for value.
const DevMnemonic = "test test test test test test test test test test test junk"

// Generate returns a new random key.
func Generate() (*ecdsa.PrivateKey, error) { return crypto.GenerateKey() }

// Save writes key as a 0x-prefixed hex line readable only by the owner. It
// refuses to overwrite an existing file.
func Save(path string, key *ecdsa.PrivateKey) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, hexutil.Encode(crypto.FromECDSA(key)))
	return errors.Join(err, f.Close())
}

// Load reads a key written by Save (a hex private key, with or without 0x).
func Load(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := crypto.HexToECDSA(strings.TrimPrefix(strings.TrimSpace(string(data)), "0x"))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return key, nil
}

// hardened marks a hardened BIP-32 child index.
const hardened = 1 << 31

// DeriveAccount derives the key at BIP-44 path m/44'/60'/0'/0/index from a
// BIP-39 mnemonic with an empty passphrase.
func DeriveAccount(mnemonic string, index uint32) (*ecdsa.PrivateKey, error) {
	if !bip39.IsMnemonicValid(mnemonic) {
		return nil, errors.New("invalid BIP-39 mnemonic")
	}
	if index >= hardened {
		return nil, fmt.Errorf("account index %d out of range", index)
	}
	seed := bip39.NewSeed(mnemonic, "")
	mac := hmac.New(sha512.New, []byte("Bitcoin seed"))
	mac.Write(seed)
	sum := mac.Sum(nil)
	key, chainCode := new(big.Int).SetBytes(sum[:32]), sum[32:]
	for _, child := range []uint32{44 + hardened, 60 + hardened, hardened, 0, index} {
		var err error
		if key, chainCode, err = deriveChild(key, chainCode, child); err != nil {
			return nil, err
		}
	}
	return crypto.ToECDSA(padKey(key))
}

// deriveChild is BIP-32 CKDpriv.
func deriveChild(parent *big.Int, chainCode []byte, index uint32) (*big.Int, []byte, error) {
	n := crypto.S256().Params().N
	var data []byte
	if index >= hardened {
		data = append([]byte{0}, padKey(parent)...)
	} else {
		priv, err := crypto.ToECDSA(padKey(parent))
		if err != nil {
			return nil, nil, err
		}
		data = crypto.CompressPubkey(&priv.PublicKey)
	}
	data = binary.BigEndian.AppendUint32(data, index)
	mac := hmac.New(sha512.New, chainCode)
	mac.Write(data)
	sum := mac.Sum(nil)
	il := new(big.Int).SetBytes(sum[:32])
	if il.Cmp(n) >= 0 {
		return nil, nil, errors.New("bip32: derived key out of range")
	}
	child := new(big.Int).Add(il, parent)
	child.Mod(child, n)
	if child.Sign() == 0 {
		return nil, nil, errors.New("bip32: derived key is zero")
	}
	return child, sum[32:], nil
}

func padKey(k *big.Int) []byte { return k.FillBytes(make([]byte, 32)) }
