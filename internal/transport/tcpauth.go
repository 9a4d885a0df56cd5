package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Node identity on the wire.
//
// Each process makes an ephemeral ECDSA P-256 key and a self-signed X.509
// certificate for it. The certificate carries one extra, non-critical
// extension (bindingOID) whose value is a DER OCTET STRING holding a 65-byte
// secp256k1 signature [R || S || V] by the node key over
//
//	keccak256("hansa-transport-v1" || genesis hash || SubjectPublicKeyInfo DER)
//
// TLS 1.3 (mutual) proves possession of the ephemeral key; the binding
// proves the node key vouches for that ephemeral key on this chain. The
// signer's address, recovered from the signature, is the peer's identity;
// it must belong to the current peer set. Certificates are not chained to
// any authority: the node key is the only trust anchor.

// bindingDomain separates binding signatures from every other use of the node key.
const bindingDomain = "hansa-transport-v1"

// certLifetime is the validity of the ephemeral certificate; a new one is
// made at every start. certBackdate tolerates peers whose clocks run behind.
const (
	certLifetime = 365 * 24 * time.Hour
	certBackdate = time.Hour
)

// bindingOID identifies the node-key binding extension:
// 1.3.6.1.4.1.32473.8721.1. The enterprise arc 32473 is the one IANA
// reserves for documentation (RFC 5612), so no registered vendor uses it;
// it stands in until the project has its own private enterprise number.
// Only Hansa nodes read this extension, and a colliding extension could not
// forge anything: its value must still verify as a node-key signature.
func bindingOID() asn1.ObjectIdentifier {
	return asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 8721, 1}
}

// bindingDigest is the digest the node key signs for a certificate whose
// SubjectPublicKeyInfo is spki.
func bindingDigest(genesis common.Hash, spki []byte) []byte {
	return crypto.Keccak256([]byte(bindingDomain), genesis[:], spki)
}

// newIdentity makes an ephemeral TLS certificate bound to nodeKey for the
// chain with the given genesis hash, valid from now.
func newIdentity(nodeKey *ecdsa.PrivateKey, genesis common.Hash, now time.Time) (tls.Certificate, error) {
	tlsKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate tls key: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&tlsKey.PublicKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("encode tls public key: %w", err)
	}
	sig, err := crypto.Sign(bindingDigest(genesis, spki), nodeKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("sign tls key with the node key: %w", err)
	}
	ext, err := asn1.Marshal(sig)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("encode binding: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate serial: %w", err)
	}
	address := crypto.PubkeyToAddress(nodeKey.PublicKey)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "hansa node " + address.Hex()},
		NotBefore:             now.Add(-certBackdate),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		ExtraExtensions:       []pkix.Extension{{Id: bindingOID(), Value: ext}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &tlsKey.PublicKey, tlsKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("parse own certificate: %w", err)
	}
	// The verifier hashes the certificate's own SPKI bytes, so they must be
	// the bytes that were signed.
	if signer, err := certSigner(leaf, genesis, now); err != nil || signer != address {
		return tls.Certificate{}, fmt.Errorf("own certificate does not verify (signer %s): %v", signer, err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: tlsKey, Leaf: leaf}, nil
}

// certSigner checks cert's validity period and binding extension and returns
// the address of the node key that signed the binding for genesis.
func certSigner(cert *x509.Certificate, genesis common.Hash, now time.Time) (common.Address, error) {
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return common.Address{}, fmt.Errorf("certificate valid from %s to %s, not now", cert.NotBefore.UTC(), cert.NotAfter.UTC())
	}
	oid := bindingOID()
	var value []byte
	found := 0
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oid) {
			value = ext.Value
			found++
		}
	}
	if found != 1 {
		return common.Address{}, fmt.Errorf("certificate has %d node-key bindings, want 1", found)
	}
	var sig []byte
	rest, err := asn1.Unmarshal(value, &sig)
	if err != nil || len(rest) != 0 || len(sig) != crypto.SignatureLength {
		return common.Address{}, errors.New("malformed node-key binding")
	}
	pub, err := crypto.SigToPub(bindingDigest(genesis, cert.RawSubjectPublicKeyInfo), sig)
	if err != nil {
		return common.Address{}, fmt.Errorf("node-key binding: %w", err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}

// tlsConfig returns the TLS 1.3 configuration presenting cert. verify
// decides on the peer's certificates; it runs on every connection,
// including resumed ones (which are disabled anyway). A server requires a
// client certificate; a client skips the chain verification that cannot
// apply to self-signed certificates and relies on verify instead.
func tlsConfig(cert tls.Certificate, server bool, verify func(certs []*x509.Certificate) error) *tls.Config {
	c := &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{cert},
		NextProtos:             []string{"http/1.1"},
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verify(cs.PeerCertificates)
		},
	}
	if server {
		c.ClientAuth = tls.RequireAnyClientCert
	} else {
		c.InsecureSkipVerify = true // verify checks the node-key binding
	}
	return c
}

// certCacheMax bounds the verified-certificate cache. Each member process
// has one certificate, so the cache stays small unless members restart very
// often; when full it is simply emptied.
const certCacheMax = 1024

// certCache remembers which node key signed certificates already verified,
// so requests on established connections skip signature recovery. It holds
// only certificates of members, so strangers cannot fill it.
type certCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]certEntry
}

type certEntry struct {
	signer              common.Address
	notBefore, notAfter time.Time
}

func (c *certCache) get(raw []byte, now time.Time) (common.Address, bool) {
	key := sha256.Sum256(raw)
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok || now.Before(e.notBefore) || now.After(e.notAfter) {
		return common.Address{}, false
	}
	return e.signer, true
}

func (c *certCache) put(cert *x509.Certificate, signer common.Address) {
	key := sha256.Sum256(cert.Raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= certCacheMax {
		c.m = make(map[[sha256.Size]byte]certEntry)
	}
	c.m[key] = certEntry{signer: signer, notBefore: cert.NotBefore, notAfter: cert.NotAfter}
}
