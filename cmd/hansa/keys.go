package main

import (
	"fmt"
	"io"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hansa-chain/hansa/internal/keys"
)

func runKeysNew(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys new", stderr)
	out := fs.String("out", "", "write the private key to this file (mode 0600) instead of printing it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	key, err := keys.Generate()
	if err != nil {
		return err
	}
	addr := crypto.PubkeyToAddress(key.PublicKey)
	if *out == "" {
		fmt.Fprintf(stdout, "address:     %s\nprivate key: %s\n", addr, hexutil.Encode(crypto.FromECDSA(key)))
		return nil
	}
	if err := keys.Save(*out, key); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "address: %s\nkey written to %s\n", addr, *out)
	return nil
}
