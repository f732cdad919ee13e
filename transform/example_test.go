package transform_test

import (
	"errors"
	"fmt"

	"github.com/rekey-dev/rekey/transform"
)

func Example() {
	spec, err := transform.ParseSpec([]string{"/tenantId", "/month={createdAt|yyyyMM}"})
	if err != nil {
		panic(err)
	}
	t, err := transform.New(spec, []string{"/region"})
	if err != nil {
		panic(err)
	}
	fmt.Println(t.KeyKind(), t.TargetPaths())

	r, err := t.Apply([]byte(`{"id":"o-1","tenantId":"contoso","region":"eu","createdAt":"2024-03-31T23:30:00-02:00","total":1.0,"_rid":"x","_ts":1711935001}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(r.ID, r.Key, r.SourceKey)
	fmt.Println(string(r.Item))

	_, err = t.Apply([]byte(`{"id":"o-2","region":"eu","createdAt":"2024-03-05"}`))
	var e *transform.Error
	if errors.As(err, &e) && errors.Is(err, transform.ErrMissingField) {
		fmt.Println(e.ID, e.Field, e.Kind)
	}
	// Output:
	// MultiHash [/tenantId /month]
	// o-1 ["contoso" "202404"] ["eu"]
	// {"id":"o-1","tenantId":"contoso","region":"eu","createdAt":"2024-03-31T23:30:00-02:00","total":1.0,"month":"202404"}
	// o-2 /tenantId missing-field
}

func ExampleParseSpec_error() {
	_, err := transform.ParseSpec([]string{"/pk={tenantId}-{createdAt|yyyymm}"})
	var se *transform.SpecError
	if errors.As(err, &se) {
		fmt.Println(se)
		fmt.Println(se.Pointer())
	}
	// Output:
	// key spec 1 "/pk={tenantId}-{createdAt|yyyymm}": column 27: expected a function: yyyy, yyyyMM, yyyyMMdd, yyyyMMddHH, lower, upper or hash:N
	//   /pk={tenantId}-{createdAt|yyyymm}
	//                             ^
}

func ExampleHashBucket() {
	fmt.Println(transform.HashBucket([]byte("tenant-0042"), 16))
	// Output: 2
}
