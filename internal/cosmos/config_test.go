package cosmos

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// secretKey is a valid base64 master key that must never be printed.
const secretKey = "c2VjcmV0LWtleS10aGF0LW11c3QtbmV2ZXItYmUtcHJpbnRlZC0wMTIzNDU2Nzg5YWJjZA=="

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" means valid
	}{
		{"key", Config{Endpoint: "https://acct.documents.azure.com:443/", AccountKey: secretKey}, ""},
		{"entra id", Config{Endpoint: "https://acct.documents.azure.com:443/"}, ""},
		{"connection string", Config{ConnectionString: "AccountEndpoint=https://acct.documents.azure.com:443/;AccountKey=" + secretKey + ";"}, ""},
		{"connection string any order and case", Config{ConnectionString: "accountkey=" + secretKey + ";ACCOUNTENDPOINT=https://acct.documents.azure.com/"}, ""},
		{"priority high", Config{Endpoint: "https://acct.documents.azure.com/", Priority: "High"}, ""},
		{"insecure 127.0.0.1", Config{Endpoint: "https://127.0.0.1:8081/", Insecure: true}, ""},
		{"insecure 127.1.2.3", Config{Endpoint: "https://127.1.2.3:8081/", Insecure: true}, ""},
		{"insecure ::1", Config{Endpoint: "https://[::1]:8081/", Insecure: true}, ""},
		{"insecure localhost", Config{Endpoint: "https://localhost:8081/", Insecure: true}, ""},
		{"http loopback", Config{Endpoint: "http://127.0.0.1:8081/"}, ""},

		{"no endpoint", Config{AccountKey: secretKey}, "endpoint: required"},
		{"insecure remote", Config{Endpoint: "https://acct.documents.azure.com:443/", AccountKey: secretKey, Insecure: true}, "insecure: trusting any TLS certificate is allowed only for loopback"},
		{"insecure private address", Config{Endpoint: "https://10.0.0.1:8081/", Insecure: true}, "only for loopback"},
		{"insecure in connection string host", Config{ConnectionString: "AccountEndpoint=https://acct.documents.azure.com/;AccountKey=" + secretKey, Insecure: true}, "only for loopback"},
		{"http remote", Config{Endpoint: "http://acct.documents.azure.com/"}, "plain http is allowed only for loopback"},
		{"bad scheme", Config{Endpoint: "ftp://acct/"}, "endpoint \"ftp://acct/\""},
		{"path", Config{Endpoint: "https://acct.documents.azure.com/dbs/x"}, "without a path"},
		{"bad key", Config{Endpoint: "https://acct.documents.azure.com/", AccountKey: "not*base64" + secretKey}, "account key: not a base64 master key"},
		{"both", Config{ConnectionString: "AccountEndpoint=https://a/;AccountKey=" + secretKey, AccountKey: secretKey}, "not both"},
		{"connection string without key", Config{ConnectionString: "AccountEndpoint=https://acct.documents.azure.com/;"}, "no AccountKey"},
		{"connection string without endpoint", Config{ConnectionString: "AccountKey=" + secretKey}, "no AccountEndpoint"},
		{"connection string garbage", Config{ConnectionString: secretKey + ";x"}, "setting 2 is not NAME=VALUE"},
		{"connection string bad key", Config{ConnectionString: "AccountEndpoint=https://a.documents.azure.com/;AccountKey=%%" + secretKey}, "account key"},
		{"connection string as endpoint", Config{Endpoint: "AccountEndpoint=https://a/;AccountKey=" + secretKey}, "looks like a connection string"},
		{"key as endpoint", Config{Endpoint: secretKey}, "looks like a connection string or key"},
		{"priority", Config{Endpoint: "https://acct.documents.azure.com/", Priority: "urgent"}, "priority \"urgent\": want low or high"},
		{"idle conns", Config{Endpoint: "https://acct.documents.azure.com/", MaxIdleConnsPerHost: -1}, "max idle connections"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), secretKey) || strings.Contains(err.Error(), secretKey[:20]) {
				t.Fatalf("Validate error leaks the key: %v", err)
			}
		})
	}
}

func TestConfigRedactsSecrets(t *testing.T) {
	for _, cfg := range []Config{
		{Endpoint: "https://acct.documents.azure.com:443/", AccountKey: secretKey},
		{ConnectionString: "AccountEndpoint=https://acct.documents.azure.com:443/;AccountKey=" + secretKey + ";"},
		{Endpoint: "AccountEndpoint=https://acct/;AccountKey=" + secretKey},
	} {
		var logged bytes.Buffer
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", cfg)
		for _, out := range []string{cfg.String(), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), logged.String()} {
			if strings.Contains(out, secretKey) {
				t.Errorf("output leaks the key: %s", out)
			}
		}
	}
	got := Config{ConnectionString: "AccountEndpoint=https://acct.documents.azure.com:443/;AccountKey=" + secretKey}.String()
	if want := "cosmos.Config{Endpoint: https://acct.documents.azure.com:443/, Auth: connection string (redacted), Insecure: false, Priority: low}"; got != want {
		t.Errorf("String = %s, want %s", got, want)
	}
}

func TestAddressable(t *testing.T) {
	tests := map[string]bool{
		"plain":                  true,
		"with spaces inside":     true,
		" leading":               true,
		"special,=.:~+-@()^${}!": true,
		"question?mark":          true,
		"unicode鱀":               true,
		"slash/inside":           false,
		`back\slash`:             false,
		"pound#sign":             false,
		"percent%20":             false,
		"trailing ":              false,
		"trailing\u00a0":         false,
		"tab\tinside":            false,
		"line\nfeed":             false,
		"carriage\rreturn":       false,
		"":                       false,
	}
	for id, want := range tests {
		if got := addressable(id); got != want {
			t.Errorf("addressable(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestPropertyRef(t *testing.T) {
	tests := map[string]string{
		"/pk":          `c["pk"]`,
		"/a/b":         `c["a"]["b"]`,
		`/"a b"/c`:     `c["a b"]["c"]`,
		"/":            "",
		"pk":           "",
		"/a//b":        "",
		`/'say"hi"'`:   `c["say\"hi\""]`,
		"/tenant.name": `c["tenant.name"]`,
	}
	for path, want := range tests {
		got, err := propertyRef("c", path)
		if want == "" {
			if err == nil {
				t.Errorf("propertyRef(%q) = %s, want an error", path, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("propertyRef(%q) = %s, %v; want %s", path, got, err, want)
		}
	}
}
