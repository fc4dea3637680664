package tlsreload

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate with the given serial and its key to file, as one PEM file
// (KMS's secure.certificate holds both).
func writeCert(t *testing.T, file string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})...)
	// Write beside and rename, as certificate renewal tools do, so that a handshake never reads half a file.
	tmp := file + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

// servedSerial makes a real TLS handshake with a server using r and returns the serial it presented.
func servedSerial(t *testing.T, r *Reloader) int64 {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: r.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.(*tls.Conn).Handshake()
		io.Copy(io.Discard, c)
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestRenewedCertificateIsServed: a certificate replaced on disk is presented to the next clients
// without a restart, and a broken file leaves the last good one in use.
func TestRenewedCertificateIsServed(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cert.pem")
	writeCert(t, file, 1)
	r, err := New(file, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, r); got != 1 {
		t.Fatalf("served serial %d, want 1", got)
	}

	writeCert(t, file, 2)
	deadline := time.Now().Add(10 * time.Second)
	for servedSerial(t, r) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate (serial 2) was never served")
		}
		time.Sleep(200 * time.Millisecond)
	}

	if err := os.WriteFile(file, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(checkEvery + 100*time.Millisecond) // past the next look at the file
	if got := servedSerial(t, r); got != 2 {
		t.Fatalf("after the file broke, served serial %d, want the last good one (2)", got)
	}
}

func TestMissingFileFails(t *testing.T) {
	if _, err := New(filepath.Join(t.TempDir(), "none.pem"), slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("New succeeded without a certificate file")
	}
}
