package migrate

import (
	"context"
	"fmt"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/transform"
)

// ApplicationWritesOf says what the application must write once it
// switches to the target: the target's key paths, the template of each
// synthetic key, and example, a source item, as the application writes it
// now (system properties left out) and as it must write it then (the key
// added). example may be nil; one the spec cannot transform is shown
// before only, and err says why.
func ApplicationWritesOf(tr *transform.Transformer, example []byte) (*lease.ApplicationWrites, error) {
	w := &lease.ApplicationWrites{KeyPaths: tr.TargetPaths()}
	for _, k := range tr.Spec().Keys() {
		if k.Synthetic() {
			w.Synthetic = append(w.Synthetic, lease.SyntheticKey{Path: k.Path.String(), Template: k.Template.String()})
		}
	}
	if example == nil {
		return w, nil
	}
	asWritten, err := withoutSystemProperties(tr, example)
	if err != nil {
		return w, err
	}
	w.Before = asWritten
	res, err := tr.Apply(example)
	if err != nil {
		return w, fmt.Errorf("the example item does not transform: %w", err)
	}
	w.After = res.Item
	return w, nil
}

// withoutSystemProperties is a source item as its writer wrote it: its
// members in order, system properties left out (transforming it on its
// own key paths, which adds nothing).
func withoutSystemProperties(tr *transform.Transformer, item []byte) ([]byte, error) {
	spec, err := transform.ParseSpec(tr.SourcePaths())
	if err != nil {
		return nil, fmt.Errorf("source key paths: %w", err)
	}
	same, err := transform.New(spec, tr.SourcePaths())
	if err != nil {
		return nil, fmt.Errorf("source key paths: %w", err)
	}
	res, err := same.Apply(item)
	if err != nil {
		return nil, fmt.Errorf("the example item: %w", err)
	}
	return res.Item, nil
}

// ExampleItem reads one item of src, the first of its first feed range
// that has one, for ApplicationWritesOf; nil when src is empty.
func ExampleItem(ctx context.Context, src Source, retry *Retrier) ([]byte, error) {
	ranges, err := ReadFeedRanges(ctx, src, retry)
	if err != nil {
		return nil, err
	}
	for _, r := range ranges {
		page, err := ReadPage(ctx, src, retry, ChangeRequest{Range: r, PageSize: 1})
		if err != nil {
			return nil, err
		}
		if len(page.Items) > 0 {
			return page.Items[0], nil
		}
	}
	return nil, nil
}
