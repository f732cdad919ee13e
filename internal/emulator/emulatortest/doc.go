// Package emulatortest starts in-process Cosmos DB emulators for tests.
//
// Start serves a fresh emulator.Server on a free loopback port, TLS by
// default, and closes it when the test ends; every test gets its own account,
// so tests may run in parallel. The package holds no SDK code: tests build
// their azcosmos client from Server.Endpoint, Server.Key and HTTPClient:
//
//	srv := emulatortest.Start(t)
//	cred, _ := azcosmos.NewKeyCredential(srv.Key())
//	client, _ := azcosmos.NewClientWithKey(srv.Endpoint(), cred, &azcosmos.ClientOptions{
//		ClientOptions: azcore.ClientOptions{Transport: emulatortest.HTTPClient(t, srv)},
//	})
//
// or, with Entra ID, from the account's test issuer:
//
//	srv := emulatortest.Start(t, emulatortest.WithEntra())
//	client, _ := azcosmos.NewClient(srv.Endpoint(), srv.Entra().Credential(""), &azcosmos.ClientOptions{
//		ClientOptions: azcore.ClientOptions{Transport: emulatortest.HTTPClient(t, srv)},
//	})
package emulatortest
