// Package deadletter keeps the items a migration could not write, each with
// why (migrate.DeadLetter), behind migrate.DeadLetterStore:
//
//   - FileStore (file.go): JSON lines in the state directory, appended as
//     items fail and as they are resolved, synced before a page is
//     checkpointed; an index of the dead items' latest lines (index.go)
//     keeps memory to the number of dead items; superseded lines are
//     compacted away (compact.go). A torn last line is cut off on open.
//   - DocumentStore (documents.go): one document per dead item in the lease
//     container of a shared (cosmos://) state, so the pods of a Kubernetes
//     Job share them.
//
// Both keep only the latest failure of an item, identified by its source id
// and its source key however that key's JSON was escaped (store.go). A
// record that does not decode is a *CorruptError (ErrCorrupt) naming the
// file and line, or the document.
package deadletter
