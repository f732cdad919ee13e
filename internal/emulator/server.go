package emulator

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"time"
)

// ServerOptions configure Start.
type ServerOptions struct {
	Options
	// Addr is the loopback address to listen on; "127.0.0.1:0" (a free port)
	// when empty. Non-loopback addresses are refused: the emulator holds no
	// real data and its key is public.
	Addr string
	// PlainHTTP serves http:// instead of https:// with a self-signed certificate.
	PlainHTTP bool
	// ComputeAddr, when set, is a second loopback address serving the same
	// account through the compute gateway's path decoding (see Gateway),
	// like the official emulator's port 8903. "127.0.0.1:0" picks a free port.
	ComputeAddr string
	// IdentityAddr is the loopback address of the managed identity
	// endpoint that hands out Entra ID tokens when Options.Entra is set
	// (managedidentity.go), plain HTTP as on App Service; "127.0.0.1:0"
	// when empty.
	IdentityAddr string
}

// Server is a running emulator.
type Server struct {
	*Emulator
	endpoint string
	keyText  string
	srv      *http.Server
	ln       net.Listener
	certPool *x509.CertPool
	done     chan struct{}
	compute  *listener // nil without ServerOptions.ComputeAddr
	identity *listener // the managed identity endpoint; nil without Options.Entra
}

// listener is one more address serving the emulator.
type listener struct {
	endpoint string
	srv      *http.Server
	done     chan struct{}
}

// Start serves a new emulator on a loopback address until Close. With TLS
// (the default) it makes a fresh self-signed certificate for 127.0.0.1 and
// localhost; HTTPClient returns a client that trusts it.
func Start(opts ServerOptions) (*Server, error) {
	emu, err := New(opts.Options)
	if err != nil {
		return nil, err
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := requireLoopback(addr); err != nil {
		return nil, err
	}
	var computeLn net.Listener
	if opts.ComputeAddr != "" {
		if err := requireLoopback(opts.ComputeAddr); err != nil {
			return nil, err
		}
		if computeLn, err = net.Listen("tcp", opts.ComputeAddr); err != nil {
			return nil, fmt.Errorf("emulator compute gateway listen on %s: %w", opts.ComputeAddr, err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if computeLn != nil {
			computeLn.Close()
		}
		return nil, fmt.Errorf("emulator listen on %s: %w", addr, err)
	}
	s := &Server{Emulator: emu, ln: ln, done: make(chan struct{}), keyText: opts.Key}
	if s.keyText == "" {
		s.keyText = WellKnownKey
	}
	s.srv = &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(emu.log.Handler(), slog.LevelDebug)}
	port := ln.Addr().(*net.TCPAddr).Port
	host := "127.0.0.1"
	if h, _, err := net.SplitHostPort(addr); err == nil && h == "localhost" {
		host = "localhost"
	}
	scheme := "http"
	if !opts.PlainHTTP {
		cert, pool, err := selfSignedCert()
		if err != nil {
			ln.Close()
			if computeLn != nil {
				computeLn.Close()
			}
			return nil, err
		}
		s.certPool = pool
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		scheme = "https"
	}
	s.endpoint = fmt.Sprintf("%s://%s:%d/", scheme, host, port)
	var computeTLS *tls.Config
	if s.srv.TLSConfig != nil {
		computeTLS = s.srv.TLSConfig.Clone() // ServeTLS adjusts its server's config: one each
	}
	go s.serve(s.srv, ln, s.done)
	if computeLn != nil {
		c := &listener{done: make(chan struct{})}
		c.srv = &http.Server{Handler: emu.ComputeHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: s.srv.ErrorLog, TLSConfig: computeTLS}
		chost := "127.0.0.1"
		if h, _, err := net.SplitHostPort(opts.ComputeAddr); err == nil && h == "localhost" {
			chost = "localhost"
		}
		c.endpoint = fmt.Sprintf("%s://%s:%d/", scheme, chost, computeLn.Addr().(*net.TCPAddr).Port)
		s.compute = c
		go s.serve(c.srv, computeLn, c.done)
	}
	if emu.entra != nil {
		if s.identity, err = s.serveIdentity(opts.IdentityAddr); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// serveIdentity serves the Entra issuer's managed identity endpoint on a
// plain-HTTP loopback address.
func (s *Server) serveIdentity(addr string) (*listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := requireLoopback(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("emulator managed identity endpoint listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(managedIdentityPath, s.entra.ManagedIdentityHandler())
	l := &listener{done: make(chan struct{})}
	l.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: s.srv.ErrorLog}
	l.endpoint = fmt.Sprintf("http://%s%s", ln.Addr().String(), managedIdentityPath)
	go s.serve(l.srv, ln, l.done)
	return l, nil
}

// ManagedIdentityEndpoint is the URL of the managed identity endpoint
// serving the account's Entra ID tokens (IDENTITY_ENDPOINT), or "" without
// Options.Entra.
func (s *Server) ManagedIdentityEndpoint() string {
	if s.identity == nil {
		return ""
	}
	return s.identity.endpoint
}

// ManagedIdentityEnv is the environment that makes azidentity's
// DefaultAzureCredential, in a child process such as `rekey run`, take its
// tokens from the account's issuer: IDENTITY_ENDPOINT, IDENTITY_HEADER
// and AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential, as "NAME=value"
// for exec.Cmd.Env (or t.Setenv). Nil without Options.Entra.
func (s *Server) ManagedIdentityEnv() []string {
	if s.identity == nil {
		return nil
	}
	return []string{
		envIdentityEndpoint + "=" + s.identity.endpoint,
		envIdentityHeader + "=" + s.entra.IdentityHeader(),
		envTokenCredentials + "=ManagedIdentityCredential",
	}
}

func (s *Server) serve(srv *http.Server, ln net.Listener, done chan struct{}) {
	defer close(done)
	var err error
	if srv.TLSConfig != nil {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("emulator: server stopped", "err", err)
	}
}

// Endpoint is the account endpoint, such as https://127.0.0.1:8081/.
func (s *Server) Endpoint() string { return s.endpoint }

// ComputeEndpoint is the compute gateway's endpoint, or "" when the server
// was started without ServerOptions.ComputeAddr.
func (s *Server) ComputeEndpoint() string {
	if s.compute == nil {
		return ""
	}
	return s.compute.endpoint
}

// Key is the account's base64 master key.
func (s *Server) Key() string { return s.keyText }

// ConnectionString is the endpoint and key in the Cosmos connection-string form.
func (s *Server) ConnectionString() string {
	return "AccountEndpoint=" + s.endpoint + ";AccountKey=" + s.keyText + ";"
}

// CertPool holds the server's self-signed certificate (nil for plain HTTP).
func (s *Server) CertPool() *x509.CertPool { return s.certPool }

// HTTPClient returns a client that trusts the server's certificate and keeps
// enough idle connections for a parallel load.
func (s *Server) HTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	if s.certPool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: s.certPool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}
}

// Close stops the server, waiting up to five seconds for requests in flight.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	for _, l := range []*listener{s.compute, s.identity} {
		if l != nil {
			err = errors.Join(err, l.srv.Shutdown(ctx))
			<-l.done
		}
	}
	return err
}

func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("emulator address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("emulator address %q: only loopback addresses (127.0.0.1, ::1, localhost) are allowed", addr)
	}
	return nil
}

// selfSignedCert makes a certificate for 127.0.0.1, ::1 and localhost, valid
// for a year, and a pool that trusts it.
func selfSignedCert() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("emulator certificate key: %w", err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "rekey emulator", Organization: []string{"rekey"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("emulator certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("emulator certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
