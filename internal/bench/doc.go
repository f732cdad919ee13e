// Package bench is the harness behind `rekey bench`: it measures rekey's
// writer against a throttled target on the emulator, beside a naive
// copier written by hand with the SDK.
//
// Run starts the emulator as a child process (emulator.go: this
// executable's `emulator` command, so that the CPU time and memory it
// measures are the migrating client's alone), seeds a source (items.go),
// migrates it with the pipeline as `rekey run --until-caught-up` does, and
// copies it again with the NaiveCopier (naive.go: a query and point
// upserts under the SDK's default retry policy, which loses an item after
// its third 429). While each writer runs it samples the emulator's
// counters and this process's CPU and memory (measure.go), and reports
// items/s, RU/s over the provisioned RU/s, the 429 share, CPU per item and
// peak memory (report.go).
//
// It is development tooling, not part of a migration: the naive copier is
// why it imports the Azure SDK, the one package besides internal/cosmos.
package bench
